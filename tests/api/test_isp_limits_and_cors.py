"""The isp API's rate limit (100 a minute per client, both routes together) and CORS for browsers."""

import uuid

import pytest

from tests.api.isp_support import add_client

TOO_MANY = {"error": "Too many requests for this client, please try again later."}
ORIGIN = "https://hotspot.example.co.ke"


def unknown_payment(storefront, client_id=None):
    """A cheap request that passes the client check: 404 Payment not found."""
    return storefront.status("ws_CO_nothing", **({"client_id": client_id} if client_id else {}))


def test_a_client_gets_a_hundred_requests_a_minute(app, storefront, limits_on):
    codes = [unknown_payment(storefront).status_code for _ in range(100)]
    assert codes == [404] * 100
    answer = unknown_payment(storefront)
    assert answer.status_code == 429 and answer.json() == TOO_MANY
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert storefront.initiate().status_code == 429  # both routes share the budget


def test_one_storefront_cannot_spend_anothers_budget(app, storefront, accounts, limits_on):
    app.config["ISP_RATE_LIMIT"] = "5 per minute"
    neighbour = add_client(app, accounts["merchant"]["id"])
    assert [unknown_payment(storefront).status_code for _ in range(6)] == [404] * 5 + [429]
    assert [unknown_payment(storefront, neighbour).status_code for _ in range(5)] == [404] * 5
    assert unknown_payment(storefront, neighbour.upper()).status_code == 429  # the same client, however spelt


def test_requests_naming_no_client_are_counted_by_address(app, storefront, limits_on):
    app.config["ISP_RATE_LIMIT"] = "5 per minute"
    garbage = [storefront.api.post("/api/v1/payments/status", data=b"nonsense").status_code for _ in range(6)]
    assert garbage == [400] * 5 + [429]
    assert unknown_payment(storefront).status_code == 404  # a real client keeps its own budget
    assert unknown_payment(storefront, str(uuid.uuid4())).status_code == 403


def test_preflights_are_not_counted(app, storefront, limits_on):
    app.config["ISP_RATE_LIMIT"] = "5 per minute"
    for _ in range(10):
        assert preflight(storefront, "/api/v1/payments/status").status_code == 200
    assert unknown_payment(storefront).status_code == 404


def preflight(storefront, path):
    return storefront.api.http.options(
        storefront.api.base + path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )


@pytest.mark.parametrize("path", ["/api/v1/payments/initiate", "/api/v1/payments/status"])
def test_browsers_preflight_is_answered(storefront, path):
    answer = preflight(storefront, path)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert answer.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in answer.headers  # no cookies: the client_id is the credential


def test_browsers_may_read_answers_and_errors(storefront, limits_on, app):
    app.config["ISP_RATE_LIMIT"] = "3 per minute"
    headers = {"Origin": ORIGIN}
    ok = storefront.api.post(
        "/api/v1/payments/initiate",
        json={
            "client_id": storefront.client_id,
            "package_id": storefront.package_id,
            "phone_number": "0712345678",
            "description": "Daily",
        },
        headers=headers,
    )
    missing = storefront.api.post("/api/v1/payments/status", json={}, headers=headers)
    not_found = storefront.api.post("/api/v1/payments/nothing", json={}, headers=headers)
    for _ in range(2):
        unknown_payment(storefront)
    limited = storefront.api.post(
        "/api/v1/payments/status", json={"client_id": storefront.client_id, "checkout_id": "x"}, headers=headers
    )
    assert [a.status_code for a in (ok, missing, not_found, limited)] == [200, 400, 404, 429]
    for answer in (ok, missing, not_found, limited):
        assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_other_apis_and_the_portal_are_not_opened_to_other_origins(storefront, api):
    for answer in (
        api.get("/transactions", headers={"Origin": ORIGIN}),
        api.get("/health", headers={"Origin": ORIGIN}),
        api.get("/isp", headers={"Origin": ORIGIN}, allow_redirects=False),
        api.get("/login", headers={"Origin": ORIGIN}),
    ):
        assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_limit_reads_bodies_as_carefully_as_the_routes(storefront, limits_on):
    """The limit's key comes from the body, so it meets hostile bodies first: they get the routes' answers."""
    huge = storefront.api.post("/api/v1/payments/status", data=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 413 and huge.json() == {"error": "Request Entity Too Large"}
    deep = storefront.api.post("/api/v1/payments/status", data=b"[" * 30_000 + b"]" * 30_000)
    assert deep.status_code == 400 and deep.json()["error"].startswith("Invalid request body: ")
    bad_utf8 = storefront.api.post("/api/v1/payments/status", data=b'{"client_id": "\xff"}')
    assert bad_utf8.status_code == 400
    assert unknown_payment(storefront).status_code == 404
