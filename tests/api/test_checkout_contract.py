"""The checkout document's contract: validation errors, auth, tenancy, listing, health, limits."""

import pytest

from portal.extensions import db
from portal.models import ApiKey, Payment
from portal.timeutil import utcnow
from tests.helpers import initiate


def details(answer):
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "Validation failed"
    return {d["path"]: d for d in body["details"]}


def test_bad_phone_is_refused_in_the_documented_format(api):
    found = details(initiate(api, phone="123"))
    assert found["phone"] == {
        "type": "field",
        "value": "123",
        "msg": "Phone number must start with 254",
        "path": "phone",
        "location": "body",
    }
    assert api.get("/transactions").json()["total"] == 0  # nothing was stored


@pytest.mark.parametrize(
    "phone,msg",
    [
        ("2547083741", "Phone number must be 12 digits in the format 254XXXXXXXXX"),
        ("254730123456", "Phone number must be a valid Safaricom number (07XX or 01XX)"),  # Airtel range
        ("25470837414x", "Phone number must contain digits only"),
        (254708374149, None),  # a JSON number is accepted
        ("+254 708 374 149", None),
        ("0110123456", None),
    ],
)
def test_phone_rules(api, phone, msg):
    answer = initiate(api, phone=phone)
    if msg is None:
        assert answer.status_code == 200, answer.text
    else:
        assert details(answer)["phone"]["msg"] == msg


@pytest.mark.parametrize(
    "amount,msg",
    [
        (0, "Amount must be between 1 and 70,000 KES"),
        (70001, "Amount must be between 1 and 70,000 KES"),
        (10.5, "Amount must be a whole number of KES (M-Pesa takes no cents)"),
        ("100", "Amount must be a number"),
        (True, "Amount must be a number"),
        (None, "Amount is required"),
    ],
)
def test_amount_rules(api, amount, msg):
    assert details(initiate(api, amount=amount))["amount"]["msg"] == msg


def test_amount_limits_are_inclusive(app, api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    assert initiate(api, phone="254711000001", amount=1).status_code == 200
    assert initiate(api, phone="254711000002", amount=70000).status_code == 200
    assert initiate(api, phone="254711000003", amount=100.0).status_code == 200


def test_every_bad_field_is_named_at_once(api):
    found = details(api.post("/initiate_payment", json={"account_reference": "x" * 13, "transaction_desc": ""}))
    assert set(found) == {"phone", "amount", "account_reference", "transaction_desc"}
    assert found["phone"]["msg"] == "Phone number is required"


def test_body_must_be_a_json_object(api):
    for body in ({"data": "phone=254708374149"}, {"json": [1, 2]}):
        found = details(api.post("/initiate_payment", **body))
        assert found[""]["msg"] == "Request body must be a JSON object"


def test_defaults_for_reference_and_description(app, api):
    checkout_id = initiate(api).json()["data"]["checkout_request_id"]
    tx = api.get(f"/transactions/{checkout_id}").json()
    assert tx["account_reference"] == "Payment"
    assert tx["transaction_desc"] == "Payment for goods/services"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong-key", "Basic abc", "bearer "])
def test_api_token_is_required(live_server, accounts, header):
    import requests

    headers = {"Authorization": header} if header else {}
    for method, path in (("post", "/initiate_payment"), ("get", "/transactions"), ("get", "/transactions/ws_CO_1")):
        answer = getattr(requests, method)(live_server + path, headers=headers, json={}, timeout=10)
        assert answer.status_code == 401
        assert answer.json() == {"error": "Unauthorized", "details": "Missing or invalid API token"}


def test_revoked_key_is_refused_and_last_use_is_recorded(app, api, accounts):
    assert api.get("/transactions").status_code == 200
    with app.app_context():
        key = ApiKey.query.filter_by(merchant_id=accounts["merchant"]["id"]).one()
        assert key.last_used_at is not None
        key.revoked_at = utcnow()
        db.session.commit()
    assert api.get("/transactions").status_code == 401


def test_health_is_public(live_server):
    import requests

    body = requests.get(live_server + "/health", timeout=10).json()
    assert body["status"] == "healthy" and body["database"] == "connected"
    assert body["timestamp"].endswith("Z")


def test_unknown_and_foreign_transactions_are_not_found(app, api, other_api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    checkout_id = initiate(api).json()["data"]["checkout_request_id"]
    assert api.get(f"/transactions/{checkout_id}").status_code == 200
    foreign = other_api.get(f"/transactions/{checkout_id}")
    assert foreign.status_code == 404
    assert foreign.json()["error"] == "Transaction not found"
    assert api.get("/transactions/ws_CO_nope").status_code == 404
    assert other_api.get("/transactions").json() == {"transactions": [], "count": 0, "total": 0}


def make_payments(app, merchant_id, rows):
    with app.app_context():
        for i, (phone, status) in enumerate(rows):
            db.session.add(
                Payment(
                    merchant_id=merchant_id,
                    reference=f"PAYT{i:04d}",
                    rail="mpesa",
                    kind="stk_push",
                    status=status,
                    amount=100 * (i + 1),
                    phone=phone,
                    api="checkout",
                    checkout_request_id=f"ws_CO_test{i:04d}",
                    meta={},
                )
            )
        db.session.commit()


def test_listing_filters_pages_and_counts(app, api, accounts):
    rows = [
        ("254708374149", "completed"),
        ("254708374149", "failed"),
        ("254711111111", "processing"),
        ("254711111111", "cancelled"),
        ("254708374149", "completed"),
        ("254722222222", "timeout"),
    ]
    make_payments(app, accounts["merchant"]["id"], rows)

    everything = api.get("/transactions").json()
    assert everything["total"] == everything["count"] == 6
    assert [t["checkout_request_id"] for t in everything["transactions"]][0] == "ws_CO_test0005"  # newest first

    assert api.get("/transactions", params={"status": "SUCCESS"}).json()["total"] == 2
    assert api.get("/transactions", params={"status": "FAILED"}).json()["total"] == 3
    assert api.get("/transactions", params={"status": "PENDING"}).json()["total"] == 1
    by_phone = api.get("/transactions", params={"phone": "0708374149", "status": "SUCCESS"}).json()
    assert by_phone["total"] == 2 and {t["phone"] for t in by_phone["transactions"]} == {"254708374149"}

    page = api.get("/transactions", params={"limit": 2, "skip": 4}).json()
    assert page["count"] == 2 and page["total"] == 6
    assert [t["amount"] for t in page["transactions"]] == [2, 1]  # rows hold 200 and 100 cents


@pytest.mark.parametrize(
    "params,path",
    [
        ({"status": "DONE"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"skip": "-1"}, "skip"),
        ({"phone": "12"}, "phone"),
    ],
)
def test_listing_rejects_bad_parameters(api, params, path):
    found = details(api.get("/transactions", params=params))
    assert found[path]["location"] == "query"


def test_initiation_is_limited_to_ten_a_minute_per_ip(app, api, limits_on):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    codes = [initiate(api, phone=f"2547110000{i:02d}").status_code for i in range(11)]
    assert codes == [200] * 10 + [429]
    answer = initiate(api, phone="254711000099")
    assert answer.json() == {"error": "Too many requests from this IP, please try again later."}
    assert api.get("/transactions").status_code == 200  # other routes keep their own budget


def test_all_routes_share_a_hundred_per_fifteen_minutes(app, api, limits_on):
    codes = [api.get("/transactions").status_code for _ in range(101)]
    assert codes.count(200) == 100 and codes[-1] == 429
    assert api.get("/health").status_code == 200  # health checks are outside the budget


SMALL_BUDGETS = {  # every API's budget per IP made small: going past it costs a dozen requests, not a hundred
    "CHECKOUT_RATE_LIMIT": "10 per 15 minutes",
    "GATEWAY_RATE_LIMIT": "10 per minute",
    "ISP_RATE_LIMIT": "10 per minute",
    "WATER_RATE_LIMIT": "10 per 15 minutes",
}


def test_health_checks_are_never_rate_limited(app, api, client, limits_on):
    app.config.update(SMALL_BUDGETS)
    codes = {api.get("/health").status_code for _ in range(30)}
    assert codes == {200}
    codes = [api.get("/transactions").status_code for _ in range(11)]
    assert codes.count(200) == 10 and codes[-1] == 429
    assert api.get("/health").status_code == 200
    health_routes = [r.rule for r in app.url_map.iter_rules() if r.rule.rstrip("/").endswith("health")]
    assert health_routes  # and every one of them, present and future, is exempt
    for rule in health_routes:
        assert {client.get(rule).status_code for _ in range(30)} <= {200, 503}, rule


def test_provider_callbacks_are_never_rate_limited(app, api, limits_on):
    """Safaricom's callbacks all come from a few addresses: a budget per IP would refuse
    customers' results. Even after this address used up the API's budget, every copy is taken."""
    app.config.update(SMALL_BUDGETS)
    codes = [api.get("/transactions").status_code for _ in range(11)]
    assert codes[-1] == 429
    for path in ("/callback", "/api/mpesa/callback/stk", "/api/payments/mpesa/callback"):
        answers = {
            api.post(path, data=b"{}", headers={"Content-Type": "application/json"}).status_code for _ in range(30)
        }
        assert answers == {200}, path


@pytest.mark.parametrize("reference", ["Order123\n", "", "x" * 13, "-leading", "Ordér"])
def test_account_reference_must_fit_on_the_prompt(api, reference):
    found = details(initiate(api, account_reference=reference))
    assert found["account_reference"]["msg"].startswith("Account reference must be 1 to 12")
