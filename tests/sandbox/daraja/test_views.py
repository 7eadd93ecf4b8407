"""The Daraja simulator's HTTP face: refusals of bodies and methods in Daraja's error envelope."""

import requests

from portal import openapi
from tests.sandbox.support import (
    assert_envelope,
    each,
)


def test_a_body_that_is_not_a_json_object_is_an_invalid_payload(sim):
    cases = [
        ("not json", "application/json"),
        ("not json", "text/plain"),
        ("BusinessShortCode=174379&Amount=1", "application/x-www-form-urlencoded"),
        ("[1, 2, 3]", "application/json"),
        ('"a string"', "application/json"),
        ("", "application/json"),
    ]

    def check(case):
        data, content_type = case
        for path in ("/mpesa/stkpush/v1/processrequest", "/mpesa/stkpushquery/v1/query"):
            answer = sim.post(path, data=data, headers={"Content-Type": content_type})
            assert_envelope(answer, 400, "400.002.05", "Invalid Request Payload")

    each(cases, check)


def test_a_wrong_method_is_405_in_darajas_envelope(sim):
    def check(case):
        method, path = case
        answer = requests.request(
            method, sim.base + path, headers={"Authorization": f"Bearer {sim.token()}"}, timeout=10
        )
        assert_envelope(answer, 405, "405.001", f"{method} Method Not Allowed")

    each(
        [
            ("GET", "/mpesa/stkpush/v1/processrequest"),
            ("PUT", "/mpesa/stkpush/v1/processrequest"),
            ("GET", "/mpesa/stkpushquery/v1/query"),
            ("POST", "/oauth/v1/generate"),
        ],
        check,
    )


def test_render_error_answers_any_status_in_darajas_envelope(app):
    from portal.sandbox.daraja.views import render_error

    with app.test_request_context("/sandbox/daraja/anything"):
        for status, code in [(404, "404.001.01"), (413, "413.001"), (500, "500.003.1001"), (418, "418.001")]:
            answer = render_error(status, "Something")
            assert answer.status_code == status
            assert answer.mimetype == "application/json"
            body = answer.get_json()
            assert set(body) == {"requestId", "errorCode", "errorMessage"}
            assert (body["errorCode"], body["errorMessage"]) == (code, "Something")
            assert body["requestId"]


def test_a_wrong_method_elsewhere_is_not_in_darajas_envelope(live_server):
    answer = requests.delete(f"{live_server}/login", timeout=10)
    assert answer.status_code == 405
    assert "errorCode" not in answer.text


def test_every_simulator_route_enforces_the_model_the_document_shows(app, business):
    """The OpenAPI document's request model of each simulator route is what validates it: an
    empty body is refused naming the first field that route's documented model requires."""
    doc = openapi.document(app)
    prefix = "/sandbox/daraja"
    routes = {path: ops["post"] for path, ops in doc["paths"].items() if path.startswith(prefix) and "post" in ops}
    assert len(routes) == 9  # push, query, C2B register and simulate (v1, v2), B2C (v1, v3), status

    def check(path):
        model = routes[path]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        first = doc["components"]["schemas"][model]["required"][0]
        assert_envelope(
            business.post(path.removeprefix(prefix), {}), 400, "400.002.02", f"Bad Request - Invalid {first}"
        )

    each(sorted(routes), check)
