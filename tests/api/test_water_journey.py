"""The water document over HTTP with the worker and the simulators: pay at a station, the
payment completes, the OTP arrives by SMS (Africa's Talking simulator), the station verifies
it, dispenses and completes; and the refusals on the way."""

import re

import requests

from portal.extensions import db
from portal.models import Otp, Sms
from tests.conftest import Api, wait_for

PHONE = "254708374149"  # pays (the simulator's suffix table)
CANCELS = "254708371032"


def pay(kiosk, phone: str = PHONE, amount=52) -> dict:
    answer = kiosk.post("/api/payments/mpesa/initiate", json={"phoneNumber": phone, "amount": amount})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["success"] is True and body["message"] == "M-Pesa payment initiated. Please enter your PIN."
    return body["data"]


def settled(kiosk, reference: str) -> dict:
    def final():
        data = kiosk.get(f"/api/payments/status/{reference}").json()["data"]
        return data if data["status"] not in ("pending", "processing") else None

    return wait_for(final, timeout=30, what=f"{reference} to settle")


def code_by_sms(live_server, phone: str, reference: str) -> str:
    """The OTP in the SMS the Africa's Talking simulator delivered to the phone."""

    def arrived():
        kept = requests.get(f"{live_server}/sandbox/africastalking/messages", params={"to": phone}, timeout=10)
        for message in kept.json()["messages"]:
            if reference in message["message"]:
                return re.search(r"\b(\d{6})\b", message["message"]).group(1)
        return None

    return wait_for(arrived, timeout=30, what=f"the SMS for {reference}")


def test_pay_get_the_code_by_sms_verify_dispense_and_complete(app, live_server, kiosk, accounts):
    started = pay(kiosk)
    reference = started["transactionReference"]
    assert re.fullmatch(r"WS-\d{13}-[A-Z0-9]{8}", reference)
    assert (started["amount"], started["liters"], started["status"], started["phoneNumber"]) == (
        50,
        10,
        "processing",
        PHONE,
    )
    assert started["checkoutRequestId"].startswith("ws_CO_")
    done = settled(kiosk, reference)
    assert done["status"] == "completed" and done["mpesaReceiptNumber"] and done["resultCode"] == 0
    assert done["amount"] == 50 and done["liters"] == 10 and done["transactionDate"].endswith("Z")

    code = code_by_sms(live_server, PHONE, reference)
    with app.app_context():
        assert db.session.query(Sms).count() == 1  # one SMS, however often the job ran
        assert code not in db.session.query(Otp.code_hmac).scalar()

    merchant = Api(live_server, accounts["merchant"]["api_key"])
    state = merchant.get(f"/api/otp/status/{reference}").json()["data"]
    assert (state["exists"], state["status"], state["remainingAttempts"], state["liters"]) == (True, "active", 3, 10)

    verified = kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": code})
    assert verified.status_code == 200, verified.text
    assert verified.json()["message"] == "OTP verified successfully. Dispensing authorized."
    data = verified.json()["data"]
    dispense = (data["stationId"], data["liters"], data["pulses"], data["status"])
    assert dispense == ("STATION001", 10, 10_000, "in_progress")

    finished = kiosk.post("/api/stations/otp/complete", json={"transactionReference": reference})
    assert finished.status_code == 200 and finished.json()["data"]["status"] == "used"
    again = kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": code})
    assert (again.status_code, again.json()["error"]) == (400, "OTP_ALREADY_USED")


def test_wrong_codes_count_down_then_block(live_server, kiosk, accounts):
    reference = pay(kiosk)["transactionReference"]
    assert settled(kiosk, reference)["status"] == "completed"
    code = code_by_sms(live_server, PHONE, reference)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [
        kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": wrong}) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert [a.json()["message"] for a in answers[:2]] == [
        "Invalid OTP. 2 attempts remaining",
        "Invalid OTP. 1 attempt remaining",
    ]
    assert answers[2].json()["error"] == "OTP_BLOCKED"
    right = kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": code})
    assert right.json()["error"] == "OTP_BLOCKED"
    status = kiosk.get(f"/api/stations/otp/status/{reference}").json()["data"]
    assert (status["status"], status["canUse"], status["remainingAttempts"]) == ("blocked", False, 0)


def test_a_second_station_is_refused_while_the_code_is_locked(live_server, kiosk, kiosk2):
    reference = pay(kiosk)["transactionReference"]
    settled(kiosk, reference)
    code = code_by_sms(live_server, PHONE, reference)
    assert kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": code}).ok
    busy = kiosk2.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": code})
    assert (busy.status_code, busy.json()["error"]) == (409, "OTP_IN_USE")
    seen = kiosk2.get(f"/api/stations/otp/status/{reference}").json()["data"]
    assert (seen["stationId"], seen["isLockedToDifferentStation"], seen["canUse"]) == ("STATION001", True, False)
    named = kiosk2.post(
        "/api/stations/otp/verify", json={"transactionReference": reference, "otp": code, "stationId": "STATION001"}
    )
    assert (named.status_code, named.json()["error"]) == (403, "STATION_MISMATCH")  # a key speaks for its station


def test_a_manual_code_replaces_the_sms_one_and_is_shown_once(live_server, kiosk, accounts):
    merchant = Api(live_server, accounts["merchant"]["api_key"])
    reference = pay(kiosk)["transactionReference"]
    settled(kiosk, reference)
    texted = code_by_sms(live_server, PHONE, reference)
    issued = merchant.post("/api/otp/generate", json={"transactionReference": reference, "liters": 10})
    assert issued.status_code == 201 and issued.json()["message"] == "OTP generated successfully"
    data = issued.json()["data"]
    assert (data["liters"], data["expiresInMinutes"]) == (10, 10) and re.fullmatch(r"\d{6}", data["otp"])
    assert "otp" not in merchant.get(f"/api/otp/status/{reference}").json()["data"]
    if texted != data["otp"]:
        old = kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": texted})
        assert old.json()["error"] == "INVALID_OTP"
    assert kiosk.post("/api/stations/otp/verify", json={"transactionReference": reference, "otp": data["otp"]}).ok
    # a station key is a station's, not the merchant's: the merchant-only routes refuse it
    assert kiosk.post("/api/otp/generate", json={"transactionReference": reference}).status_code == 401
    assert kiosk.get(f"/api/otp/status/{reference}").status_code == 401


def test_a_cancelled_payment_gets_no_code(live_server, kiosk, accounts):
    merchant = Api(live_server, accounts["merchant"]["api_key"])
    reference = pay(kiosk, CANCELS)["transactionReference"]
    assert settled(kiosk, reference)["status"] == "cancelled"
    refused = merchant.post("/api/otp/generate", json={"transactionReference": reference})
    assert (refused.status_code, refused.json()["error"]) == (400, "TRANSACTION_NOT_COMPLETED")
    assert merchant.get(f"/api/otp/status/{reference}").json()["data"] == {"exists": False}


def test_unknown_references_and_bad_bodies_answer_in_the_documents_format(live_server, kiosk, accounts):
    merchant = Api(live_server, accounts["merchant"]["api_key"])
    missing = "WS-1707123456789-ABCD1234"
    for answer in (
        kiosk.get(f"/api/payments/status/{missing}"),
        kiosk.get(f"/api/payments/mpesa/query/{missing}"),
        merchant.get(f"/api/otp/status/{missing}"),
        merchant.post("/api/otp/generate", json={"transactionReference": missing}),
    ):
        assert answer.status_code == 404 and answer.json() == {
            "success": False,
            "message": "Transaction not found",
            "error": "TRANSACTION_NOT_FOUND",
        }
    otp_missing = kiosk.post("/api/stations/otp/verify", json={"transactionReference": missing, "otp": "123456"})
    assert (otp_missing.status_code, otp_missing.json()["error"]) == (404, "OTP_NOT_FOUND")
    for body in ({"phoneNumber": "0712", "amount": 50}, {"phoneNumber": PHONE, "amount": 52.5}, {"amount": 50}):
        bad = kiosk.post("/api/payments/mpesa/initiate", json=body)
        assert bad.status_code == 400 and bad.json()["success"] is False, body
    short = kiosk.post("/api/stations/otp/verify", json={"transactionReference": missing, "otp": "12345"})
    assert short.status_code == 400 and short.json()["error"] == "VALIDATION_ERROR"
    nameless = merchant.post("/api/stations/otp/verify", json={"transactionReference": missing, "otp": "123456"})
    assert (nameless.status_code, nameless.json()["message"]) == (400, "stationId is required")


def test_the_query_asks_mpesa_and_answers_the_documented_shape(live_server, kiosk):
    reference = pay(kiosk)["transactionReference"]
    answer = kiosk.get(f"/api/payments/mpesa/query/{reference}")
    assert answer.status_code == 200 and answer.json()["message"] == "Payment status verified from M-Pesa"
    assert answer.json()["data"]["transactionReference"] == reference
    assert answer.json()["data"]["status"] in ("processing", "completed")


def test_another_merchants_key_finds_none_of_the_payments_and_changes_nothing(app, live_server, kiosk, accounts):
    """The water routes name payments in the body as well as the path: another merchant's API
    key is told they do not exist, and nothing is issued, verified or completed."""
    reference = pay(kiosk)["transactionReference"]
    settled(kiosk, reference)
    code = code_by_sms(live_server, PHONE, reference)
    intruder = Api(live_server, accounts["other_merchant"]["api_key"])
    with app.app_context():
        before = db.session.query(Otp.code_hmac, Otp.status, Otp.attempts, Otp.issued).one()
    for answer in (
        intruder.get(f"/api/payments/status/{reference}"),
        intruder.get(f"/api/otp/status/{reference}"),
        intruder.post("/api/otp/generate", json={"transactionReference": reference}),
    ):
        assert answer.status_code == 404, answer.text
    for path, body in (
        ("/api/stations/otp/verify", {"transactionReference": reference, "otp": code, "stationId": "STATION001"}),
        ("/api/stations/otp/complete", {"transactionReference": reference, "stationId": "STATION001"}),
    ):
        assert intruder.post(path, json=body).status_code == 404  # neither the station nor the code is theirs
    with app.app_context():
        assert db.session.query(Otp.code_hmac, Otp.status, Otp.attempts, Otp.issued).one() == before
