"""The water API's payment preview over HTTP: a station's key or an API key, the merchant's
pricing, refusals in the document's format, its rate limit and headers; and a station's key
refused everywhere an API key is asked for."""

import time

import pytest

from portal.extensions import db
from portal.models import Merchant
from portal.services import stations
from portal.services.water_pricing import WaterPricing, save_pricing
from tests.conftest import Api

PREVIEW = "/api/payments/preview"
DOCUMENTED = {
    "success": True,
    "message": "Payment preview generated",
    "data": {
        "requestedAmount": 52,
        "amount": 50,
        "liters": 10,
        "pricePerLiter": 5,
        "currency": "KES",
        "roundingStrategy": "nearest",
        "difference": -2,
    },
}
UNAUTHORISED = {
    "success": False,
    "message": "Missing or invalid station key or API key (Authorization: Bearer <key>)",
    "error": "UNAUTHORIZED",
}
TOO_MANY = {"success": False, "message": "Too many requests from this IP, please try again later."}


def station(app, merchant_id, code):
    with app.app_context():
        row = stations.station_by_code(merchant_id, code)
        db.session.expunge(row)
        return row


def test_a_station_key_gets_the_documented_preview(kiosk):
    answer = kiosk.post(PREVIEW, json={"amount": 52})
    assert answer.status_code == 200
    assert answer.json() == DOCUMENTED
    assert list(answer.json()["data"]) == list(DOCUMENTED["data"])  # the document's order


def test_an_api_key_gets_it_too_and_a_whole_float_is_a_whole_amount(api):
    answer = api.post(PREVIEW, json={"amount": 52.0})
    assert answer.status_code == 200 and answer.json() == DOCUMENTED


def test_the_preview_follows_the_merchants_own_pricing(app, kiosk, other_api, accounts):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        save_pricing(merchant, WaterPricing(price_per_liter=7, rounding="up", min_amount=7, max_amount=700))
    data = kiosk.post(PREVIEW, json={"amount": 52}).json()["data"]
    assert data == {
        "requestedAmount": 52,
        "amount": 56,
        "liters": 8,
        "pricePerLiter": 7,
        "currency": "KES",
        "roundingStrategy": "up",
        "difference": 4,
    }
    assert other_api.post(PREVIEW, json={"amount": 52}).json() == DOCUMENTED  # another merchant: its own (default)


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"amount": 52.5}, "VALIDATION_ERROR", "Amount must be a whole number of KES (M-Pesa takes no cents)"),
        ({"amount": "52"}, "VALIDATION_ERROR", "Amount must be a number"),
        ({"amount": True}, "VALIDATION_ERROR", "Amount must be a number"),
        ({"amount": None}, "VALIDATION_ERROR", "Amount is required"),
        ({}, "VALIDATION_ERROR", "amount is required"),
        ({"amount": 4}, "INVALID_AMOUNT", "Amount out of range: it must be between KES 5 and KES 10,000"),
        ({"amount": 0}, "INVALID_AMOUNT", "Amount out of range: it must be between KES 5 and KES 10,000"),
        ({"amount": -52}, "INVALID_AMOUNT", "Amount out of range: it must be between KES 5 and KES 10,000"),
        ({"amount": 10_001}, "INVALID_AMOUNT", "Amount out of range: it must be between KES 5 and KES 10,000"),
        ({"amount": 10**40}, "INVALID_AMOUNT", "Amount out of range: it must be between KES 5 and KES 10,000"),
    ],
)
def test_bad_amounts_are_400_in_the_documents_format(kiosk, body, code, words):
    answer = kiosk.post(PREVIEW, json=body)
    assert answer.status_code == 400
    refused = answer.json()
    assert (refused["success"], refused["error"], refused["message"]) == (False, code, words)


def test_bodies_that_are_not_json_objects_are_400(kiosk):
    for body, headers in ((b"amount=52", {"Content-Type": "application/x-www-form-urlencoded"}), (b"[52]", {})):
        answer = kiosk.post(PREVIEW, data=body, headers={"Content-Type": "application/json", **headers})
        assert answer.status_code == 400 and answer.json()["success"] is False


def test_no_bad_or_disabled_key_gets_a_preview(app, kiosk, live_server, accounts):
    merchant_id = accounts["merchant"]["id"]
    for header in (None, "Bearer", "Bearer wsk_not-a-key", "Bearer mpk_not-a-key", "Basic " + kiosk_key(kiosk)):
        headers = {"Authorization": header} if header else {}
        answer = Api(live_server, None).post(PREVIEW, json={"amount": 52}, headers=headers)
        assert answer.status_code == 401 and answer.json() == UNAUTHORISED, header
    with app.app_context():
        stations.set_active(stations.station_by_code(merchant_id, "STATION001"), False)
    assert kiosk.post(PREVIEW, json={"amount": 52}).json() == UNAUTHORISED
    assert Api(live_server, accounts["station2"]["key"]).post(PREVIEW, json={"amount": 52}).status_code == 200
    with app.app_context():
        stations.set_active(stations.station_by_code(merchant_id, "STATION001"), True)
    assert kiosk.post(PREVIEW, json={"amount": 52}).status_code == 200  # enabled again, the same key works


def kiosk_key(api: Api) -> str:
    return api.http.headers["Authorization"].removeprefix("Bearer ")


def test_a_rotated_key_is_refused_at_once_and_the_new_one_works(app, kiosk, live_server, accounts):
    assert kiosk.post(PREVIEW, json={"amount": 52}).status_code == 200
    with app.app_context():
        new_key = stations.rotate_key(stations.station_by_code(accounts["merchant"]["id"], "STATION001"))
    assert kiosk.post(PREVIEW, json={"amount": 52}).json() == UNAUTHORISED
    assert Api(live_server, new_key).post(PREVIEW, json={"amount": 52}).json() == DOCUMENTED
    rotated = station(app, accounts["merchant"]["id"], "STATION001")
    assert rotated.key_prefix == new_key[:12] and rotated.key_rotated_at is not None


def test_a_station_key_opens_no_route_that_takes_an_api_key(kiosk):
    """Checkout, gateway and its money routes each refuse it with their own 401."""
    checkout = kiosk.get("/transactions")
    assert checkout.status_code == 401 and checkout.json() == {
        "error": "Unauthorized",
        "details": "Missing or invalid API token",
    }
    assert kiosk.post("/initiate_payment", json={"phone": "254708374149", "amount": 10}).status_code == 401
    gateway_refusal = {
        "success": False,
        "message": "Missing or invalid API key (Authorization: Bearer <key>)",
        "error": "UNAUTHORIZED",
    }
    for method, path in (("get", "/api/transactions"), ("post", "/api/mpesa/stk-push"), ("post", "/api/mpesa/b2c")):
        answer = getattr(kiosk, method)(path, json={})
        assert answer.status_code == 401 and answer.json() == gateway_refusal, path


def test_answers_carry_the_rate_limit_and_the_budget_runs_out_per_ip(app, kiosk, api, live_server, limits_on):
    app.config["WATER_RATE_LIMIT"] = "3 per 15 minutes"
    before = int(time.time())
    anonymous = Api(live_server, None)
    answers = [
        kiosk.post(PREVIEW, json={"amount": 52}),
        api.post(PREVIEW, json={"amount": 4}),
        anonymous.post(PREVIEW, json={"amount": 52}),
    ]
    assert [a.status_code for a in answers] == [200, 400, 401]  # refusals count too, whatever the key
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["3"] * 3
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert before + 15 * 60 - 5 <= reset <= before + 15 * 60 + 5  # a Unix time, when the window ends
    over = kiosk.post(PREVIEW, json={"amount": 52})
    assert over.status_code == 429 and over.json() == TOO_MANY
    assert over.headers["X-RateLimit-Remaining"] == "0" and over.headers["X-RateLimit-Limit"] == "3"
    assert 1 <= int(over.headers["Retry-After"]) <= 15 * 60 + 1
    assert api.get("/api/transactions").status_code == 200  # the gateway keeps its own budget


def test_the_budget_is_a_hundred_per_fifteen_minutes_by_default(app, kiosk, limits_on):
    answer = kiosk.post(PREVIEW, json={"amount": 52})
    assert answer.headers["X-RateLimit-Limit"] == "100" and answer.headers["X-RateLimit-Remaining"] == "99"


def test_errors_under_the_water_paths_are_in_the_documents_format(app, accounts):
    client = app.test_client()
    key = {"Authorization": f"Bearer {accounts['station']['key']}"}
    too_big = client.post(PREVIEW, json={"amount": 52, "x": "a" * 70_000}, headers=key)
    wrong_method = client.get(PREVIEW, headers=key)
    unknown = client.get("/api/otp/no-such-route", headers=key)
    for answer, status in ((too_big, 413), (wrong_method, 405), (unknown, 404)):
        body = answer.get_json()
        assert answer.status_code == status and body["success"] is False and body["error"] and body["message"]
    assert set(wrong_method.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
