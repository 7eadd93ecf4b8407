"""The water document's Paystack routes over HTTP with the worker and the simulators: a checkout
started with an API key, paid on the simulator's hosted page, completed by the signed
charge.success webhook, the code texted to the customer; the browser's callback, which moves no
money; verify; and the refusals on the way (forged and repeated webhooks, bad requests, another
merchant's reference, a merchant without Paystack)."""

import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from portal.extensions import db
from portal.models import Callback, Merchant, Otp, Payment, PaymentEvent, Sms
from portal.services.mpesa.sweeps import give_up
from portal.timeutil import iso_z
from tests.conftest import wait_for
from tests.helpers import Checkout, settled, stk_payment

PHONE = "254712345678"  # where the code is texted (phoneNumber, typed as 0712 345 678)
INITIALIZE = "/api/payments/paystack/initialize"
WEBHOOK = "/api/payments/webhook"  # where the simulator's integration sends its events
WATER_WEBHOOK = "/api/payments/paystack/webhook"  # the water document's path for them


def initialize(api, **body) -> dict:
    sent = {"email": "jane@example.com", "amount": 52, "phoneNumber": "0712 345 678", **body}
    answer = api.post(INITIALIZE, json=sent)
    assert answer.status_code == 201, answer.text
    assert (
        answer.json()["message"] == "Payment checkout initialized successfully. Redirect customer to authorizationUrl."
    )
    return answer.json()["data"]


def status_of(api, reference: str) -> dict:
    answer = api.get(f"/api/payments/status/{reference}")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def completed(api, reference: str) -> dict:
    def done():
        data = status_of(api, reference)
        return data if data["status"] == "completed" else None

    return wait_for(done, timeout=30, what=f"{reference} to complete")


def texts(live_server, phone: str, reference: str) -> list[str]:
    kept = requests.get(f"{live_server}/sandbox/africastalking/messages", params={"to": phone}, timeout=10)
    return [m["message"] for m in kept.json()["messages"] if reference in m["message"]]


def code_by_sms(live_server, phone: str, reference: str) -> str:
    [text] = wait_for(lambda: texts(live_server, phone, reference), timeout=30, what=f"the SMS for {reference}")
    return re.search(r"\b(\d{6})\b", text).group(1)


def payment(app, reference: str) -> Payment:
    with app.app_context():
        row = Payment.query.filter_by(reference=reference).one()
        db.session.expunge(row)
        return row


def timeline(app, reference: str) -> list[tuple]:
    with app.app_context():
        row = Payment.query.filter_by(reference=reference).one()
        events = PaymentEvent.query.filter_by(payment_id=row.id).order_by(PaymentEvent.id)
        return [(e.from_status, e.to_status, e.source) for e in events]


def webhooks(app, reference: str) -> list[Callback]:
    with app.app_context():
        rows = Callback.query.filter_by(provider="paystack", provider_id=reference).order_by(Callback.id).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def counts(app, reference: str) -> tuple[int, int]:
    """The payment's OTPs, and the SMS rows to its phone (a test pays once per phone)."""
    with app.app_context():
        row = Payment.query.filter_by(reference=reference).one()
        return Otp.query.filter_by(payment_id=row.id).count(), Sms.query.filter_by(to=row.phone).count()


def signature_of(row: Callback) -> str:
    return next(value for name, value in row.headers.items() if name.lower() == "x-paystack-signature")


# -- the journey ---------------------------------------------------------------------------------
def test_pay_by_card_at_the_checkout_the_webhook_completes_it_and_the_code_is_texted(app, api, live_server):
    started = initialize(api)
    reference = started["transactionReference"]
    assert re.fullmatch(r"WS-\d{13}-[A-Z0-9]{8}", reference)
    assert set(started) == {
        "transactionReference",
        "authorizationUrl",
        "accessCode",
        "status",
        "expiresAt",
        "amount",
        "liters",
    }
    assert (started["status"], started["amount"], started["liters"]) == ("processing", 50, 10)
    assert started["authorizationUrl"] == f"{live_server}/sandbox/paystack/checkout/{started['accessCode']}"
    row = payment(app, reference)
    assert started["expiresAt"] == iso_z(row.created_at + timedelta(seconds=app.config["SWEEP_TIMEOUT_AFTER"]))
    assert (row.rail, row.kind, row.api, row.amount, row.phone, row.email) == (
        "paystack",
        "checkout",
        "water",
        5000,
        PHONE,
        "jane@example.com",
    )
    assert row.meta["liters"] == 10 and row.meta["station"] is None

    checkout = Checkout(started["authorizationUrl"])
    assert "KES 50.00" in checkout.page and "jane@example.com" in checkout.page
    paid = checkout.post("card", card_number="4084 0840 8408 4081")
    assert paid.status_code == 303
    back = urlsplit(paid.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{live_server}/api/payments/paystack/callback"
    assert back.query == f"trxref={reference}&reference={reference}"

    # the signed charge.success, at the integration's webhook URL, completes it (the browser has
    # not come back yet: nobody asked Paystack)
    done = completed(api, reference)
    assert ("processing", "completed", "webhook") in timeline(app, reference)
    [hook] = webhooks(app, reference)
    assert (hook.path, hook.outcome) == (WEBHOOK, "applied")
    assert (done["paymentMethod"], done["paystackStatus"], done["paystackChannel"]) == ("paystack", "success", "card")
    assert done["paystackReceiptNumber"] and done["mpesaReceiptNumber"] is None
    assert done["checkoutRequestId"] is None and done["merchantRequestId"] is None
    assert (done["amount"], done["liters"], done["currency"], done["resultCode"]) == (50, 10, "KES", 0)
    assert done["transactionDate"].endswith("Z") and done["email"] == "jane@example.com"

    # the customer's browser comes back: told where to verify, no key needed
    landed = requests.get(paid.headers["Location"], timeout=10)
    assert landed.status_code == 200, landed.text
    assert landed.json() == {
        "success": True,
        "message": "Payment callback received. Verify payment to confirm final status.",
        "data": {"reference": reference, "verifyUrl": f"/api/payments/paystack/verify/{reference}"},
    }
    verified = api.get(landed.json()["data"]["verifyUrl"])
    assert verified.status_code == 200 and verified.json()["message"] == "Payment verified successfully"
    assert verified.json()["data"] == status_of(api, reference)

    # the code, by SMS to the phone given at initialize, once
    code = code_by_sms(live_server, PHONE, reference)
    assert f"for 10 L ({reference})" in texts(live_server, PHONE, reference)[0]
    settled(app)
    assert counts(app, reference) == (1, 1)
    state = api.get(f"/api/otp/status/{reference}").json()["data"]
    assert (state["exists"], state["status"], state["liters"]) == (True, "active", 10)
    assert re.fullmatch(r"\d{6}", code)


def test_paying_by_mpesa_at_the_checkout_shows_the_mpesa_receipt(app, api, live_server):
    started = initialize(api, amount=100)
    Checkout(started["authorizationUrl"]).post("mpesa", phone="0722 000 111")
    done = completed(api, started["transactionReference"])
    assert (done["amount"], done["liters"], done["paystackChannel"]) == (100, 20, "mobile_money")
    assert re.fullmatch(r"[A-Z0-9]{10}", done["paystackReceiptNumber"])
    code_by_sms(live_server, PHONE, started["transactionReference"])  # to phoneNumber, not the paying number


def test_a_lost_webhook_is_made_up_for_by_the_callbacks_verify(app, api, live_server):
    """M-Pesa numbers ending 9999 pay but Paystack never sends the webhook: the browser coming
    back makes us ask Paystack, whose answer (not the visit) completes the payment."""
    started = initialize(api)
    reference = started["transactionReference"]
    back = Checkout(started["authorizationUrl"]).post("mpesa", phone="0712 349 999").headers["Location"]
    settled(app)
    assert status_of(api, reference)["status"] == "processing" and webhooks(app, reference) == []
    assert requests.get(back, timeout=10).status_code == 200
    assert completed(api, reference)["paystackStatus"] == "success"
    assert ("processing", "completed", "query") in timeline(app, reference)
    code_by_sms(live_server, PHONE, reference)


def test_visiting_the_callback_of_an_unpaid_checkout_moves_no_money(app, api, live_server):
    reference = initialize(api)["transactionReference"]
    url = f"{live_server}/api/payments/paystack/callback?trxref={reference}&reference={reference}"
    for _ in range(3):
        assert requests.get(url, timeout=10).status_code == 200
    settled(app)
    assert payment(app, reference).last_queried_at is not None  # Paystack was asked, and said abandoned
    assert status_of(api, reference)["status"] == "processing"
    assert timeline(app, reference) == [(None, "pending", "api"), ("pending", "processing", "api")]
    assert counts(app, reference) == (0, 0)


def test_a_declined_card_leaves_the_checkout_payable(app, api, live_server):
    started = initialize(api)
    reference = started["transactionReference"]
    back = Checkout(started["authorizationUrl"]).post("fail")
    assert back.status_code == 303 and f"reference={reference}" in back.headers["Location"]
    assert requests.get(back.headers["Location"], timeout=10).status_code == 200
    verified = api.get(f"/api/payments/paystack/verify/{reference}")
    assert verified.status_code == 200, verified.text
    # Paystack says failed; a checkout's customer may still pay again, so it is timeout, not failed
    assert (verified.json()["data"]["status"], verified.json()["data"]["paystackStatus"]) == ("timeout", "failed")
    settled(app)
    assert counts(app, reference) == (0, 0) and texts(live_server, PHONE, reference) == []


def test_an_unpaid_checkout_is_given_up_when_it_expires(app, api, live_server):
    started = initialize(api)
    reference = started["transactionReference"]
    expiry = datetime.strptime(started["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
    with app.app_context():
        give_up(expiry - timedelta(seconds=1))
        assert db.session.get(Payment, payment(app, reference).id).status == "processing"
        give_up(expiry + timedelta(seconds=1))
    gone = status_of(api, reference)
    assert (gone["status"], gone["paystackStatus"]) == ("timeout", "abandoned")


def test_a_cancelled_checkout_can_still_be_paid_on_the_same_page(app, api, live_server):
    started = initialize(api)
    reference = started["transactionReference"]
    checkout = Checkout(started["authorizationUrl"])
    cancelled = checkout.post("cancel")
    assert cancelled.status_code == 303 and f"reference={reference}" in cancelled.headers["Location"]
    assert requests.get(cancelled.headers["Location"], timeout=10).status_code == 200
    settled(app)
    assert status_of(api, reference)["status"] == "processing" and counts(app, reference) == (0, 0)
    checkout.post("card", card_number="4084 0840 8408 4081")
    assert completed(api, reference)["status"] == "completed"


# -- webhooks at the water path ------------------------------------------------------------------
def charge_success(reference: str, amount: int = 5000) -> bytes:
    data = {
        "id": 4099260516,
        "reference": reference,
        "status": "success",
        "amount": amount,
        "currency": "KES",
        "channel": "card",
        "gateway_response": "Successful",
        "paid_at": "2026-11-24T10:10:12.000Z",
    }
    return json.dumps({"event": "charge.success", "data": data}).encode()


def test_a_forged_webhook_is_refused_stored_and_changes_nothing(app, api, accounts, live_server):
    reference = initialize(api)["transactionReference"]
    with app.app_context():
        other_key = db.session.get(Merchant, accounts["other_merchant"]["id"]).paystack_secret_key
    body = charge_success(reference)
    forgeries = {
        "wrong key": hmac.new(b"sk_test_" + b"0" * 40, body, hashlib.sha512).hexdigest(),
        "another merchant's key": hmac.new(other_key.encode(), body, hashlib.sha512).hexdigest(),
        "no signature": None,
        "garbage": "\u00e9\u00e9not-hex",
    }
    for why, signature in forgeries.items():
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["x-paystack-signature"] = signature.encode("utf-8").decode("latin-1")
        answer = requests.post(live_server + WATER_WEBHOOK, data=body, headers=headers, timeout=10)
        assert answer.status_code == 401, why
        assert answer.json() == {"success": False, "message": "Invalid signature", "error": "INVALID_SIGNATURE"}
    settled(app)
    rows = webhooks(app, reference)
    assert [(r.path, r.outcome) for r in rows] == [(WATER_WEBHOOK, "rejected")] * 4
    assert all(bytes(r.raw) == body and "signature" in r.outcome_detail for r in rows)
    assert status_of(api, reference)["status"] == "processing"
    assert timeline(app, reference) == [(None, "pending", "api"), ("pending", "processing", "api")]
    assert counts(app, reference) == (0, 0)


def test_the_same_webhook_three_times_completes_once_and_texts_once(app, api, live_server):
    app.config["SANDBOX_CALLBACK_COPIES"] = 2  # the simulator sends each event twice...
    started = initialize(api)
    reference = started["transactionReference"]
    Checkout(started["authorizationUrl"]).post("card", card_number="4084 0840 8408 4081")
    first, second = wait_for(lambda: len(webhooks(app, reference)) == 2 and webhooks(app, reference), what="2 copies")
    # ...and a third copy, the same bytes and signature, arrives at the water document's path
    headers = {"Content-Type": "application/json", "x-paystack-signature": signature_of(first)}
    again = requests.post(live_server + WATER_WEBHOOK, data=bytes(first.raw), headers=headers, timeout=10)
    assert again.status_code == 200 and again.json() == {"success": True, "message": "Webhook received"}
    settled(app)
    rows = webhooks(app, reference)
    assert sorted(r.outcome for r in rows) == ["applied", "duplicate", "duplicate"]
    assert [r.path for r in rows] == [WEBHOOK, WEBHOOK, WATER_WEBHOOK]
    assert [t for t in timeline(app, reference) if t[1] == "completed"] == [("processing", "completed", "webhook")]
    code_by_sms(live_server, PHONE, reference)
    settled(app)
    assert counts(app, reference) == (1, 1)
    assert len(texts(live_server, PHONE, reference)) == 1


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": 50}, "email"),
        ({"email": "", "amount": 50}, "email"),
        ({"email": "not-an-email", "amount": 50}, "email"),
        ({"email": "jane\x00@example.com", "amount": 50}, "email"),
        ({"email": "jane@example.com\n", "amount": 50}, None),  # trimmed: taken
        ({"email": "a" * 250 + "@example.com", "amount": 50}, "email"),
        ({"email": ["jane@example.com"], "amount": 50}, "email"),
        ({"email": "jane@example.com"}, "amount"),
        ({"email": "jane@example.com", "amount": 52.5}, "amount"),
        ({"email": "jane@example.com", "amount": "50"}, "amount"),
        ({"email": "jane@example.com", "amount": True}, "amount"),
        ({"email": "jane@example.com", "amount": 1e309}, "amount"),
        ({"email": "jane@example.com", "amount": 3}, "INVALID_AMOUNT"),
        ({"email": "jane@example.com", "amount": 10**30}, "INVALID_AMOUNT"),
        ({"email": "jane@example.com", "amount": 50, "currency": "NGN"}, "currency"),
        ({"email": "jane@example.com", "amount": 50, "currency": "kes "}, "currency"),
        ({"email": "jane@example.com", "amount": 50, "phoneNumber": "12345"}, "phoneNumber"),
        ({"email": "jane@example.com", "amount": 50, "phoneNumber": "0712\x00345678"}, "phoneNumber"),
        ({"email": "jane@example.com", "amount": 50, "phoneNumber": "+1 202 555 0143"}, "phoneNumber"),
        ({"email": "jane@example.com", "amount": 50, "metadata": {"note": "\x1b[31m"}}, "metadata"),
        ({"email": "jane@example.com", "amount": 50, "metadata": "customer"}, "metadata"),
    ],
)
def test_bad_requests_are_400_in_the_envelope_and_start_nothing(app, api, body, field):
    answer = api.post(INITIALIZE, data=json.dumps(body), headers={"Content-Type": "application/json"})
    if field is None:
        assert answer.status_code == 201, answer.text
        return
    assert answer.status_code == 400, answer.text
    refusal = answer.json()
    assert refusal["success"] is False and refusal["message"]
    if field == "INVALID_AMOUNT":
        assert refusal["error"] == "INVALID_AMOUNT"
    else:
        assert refusal["error"] == "VALIDATION_ERROR" and refusal["errors"][0]["field"] == field
        assert refusal["message"] == refusal["errors"][0]["message"]
    with app.app_context():
        assert Payment.query.count() == 0


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b'{"email": "\\ud800@example.com", "amount": 50}', "application/json"),  # a lone surrogate
        (b'{"email": "jane@example.com", "amount": NaN}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b"email=jane@example.com&amount=50", "application/x-www-form-urlencoded"),
    ],
)
def test_hostile_bodies_are_400_in_the_envelope(app, api, raw, content_type):
    answer = api.post(INITIALIZE, data=raw, headers={"Content-Type": content_type})
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False and answer.json()["error"] == "VALIDATION_ERROR"
    with app.app_context():
        assert Payment.query.count() == 0


def test_without_a_paystack_key_initialize_and_verify_answer_503(app, api, accounts):
    reference = initialize(api)["transactionReference"]
    with app.app_context():
        db.session.get(Merchant, accounts["merchant"]["id"]).paystack_secret_key = None
        db.session.commit()
    refused = api.post(INITIALIZE, json={"email": "jane@example.com", "amount": 50})
    assert refused.status_code == 503
    assert refused.json()["error"] == "NOT_CONFIGURED" and "Paystack is not set up" in refused.json()["message"]
    unverified = api.get(f"/api/payments/paystack/verify/{reference}")
    assert (unverified.status_code, unverified.json()["error"]) == (503, "NOT_CONFIGURED")
    with app.app_context():
        assert Payment.query.count() == 1  # the refused one was never recorded


def test_paystack_failing_answers_in_the_envelope(app, api):
    reference = initialize(api)["transactionReference"]
    app.config.update(SANDBOX_FAULT_API_500=10**6, SANDBOX_FAULT_API_PATHS="/sandbox/paystack/transaction")
    unverified = api.get(f"/api/payments/paystack/verify/{reference}")
    assert unverified.status_code == 503, unverified.text
    assert unverified.json()["success"] is False and "Paystack is unavailable" in unverified.json()["message"]
    lost = api.post(INITIALIZE, json={"email": "jane@example.com", "amount": 50})
    assert (lost.status_code, lost.json()["error"]) == (504, "OUTCOME_UNKNOWN")  # it may have reached Paystack
    assert "Do not retry" in lost.json()["message"]


def test_another_merchants_reference_is_not_found(app, api, other_api):
    reference = initialize(api)["transactionReference"]
    for path in (f"/api/payments/paystack/verify/{reference}", f"/api/payments/status/{reference}"):
        answer = other_api.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"success": False, "message": "Transaction not found", "error": "TRANSACTION_NOT_FOUND"}
    assert status_of(api, reference)["status"] == "processing"


def test_each_rail_has_its_own_ask_the_provider_route(app, api, accounts):
    paystack = initialize(api)["transactionReference"]
    mpesa = "WS-1700000000000-MPESA001"
    with app.app_context():
        stk_payment(accounts["merchant"]["id"], mpesa, api="water", meta={"liters": 10, "metadata": {}})
    wrong = api.get(f"/api/payments/paystack/verify/{mpesa}")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "NOT_A_PAYSTACK_PAYMENT")
    assert wrong.json()["message"] == f"{mpesa} is an M-Pesa payment: ask GET /api/payments/mpesa/query/{mpesa}"
    other = api.get(f"/api/payments/mpesa/query/{paystack}")
    assert (other.status_code, other.json()["error"]) == (400, "NOT_AN_MPESA_PAYMENT")
    # the status route answers both, in one shape
    both = status_of(api, mpesa), status_of(api, paystack)
    assert set(both[0]) == set(both[1])
    assert (both[0]["paymentMethod"], both[0]["paystackStatus"], both[0]["email"]) == ("mpesa", None, None)
    assert (both[1]["paymentMethod"], both[1]["paystackStatus"]) == ("paystack", "pending")


@pytest.mark.parametrize(
    "query, status",
    [
        ("", 400),
        ("?trxref=WS-1700000000000-ABCD1234", 400),
        ("?reference=" + "W" * 41, 400),
        ("?reference=WS-1700%00", 400),
        ("?reference=WS-1700000000000-ABCD1234", 404),
        ("?reference=%F0%9F%92%A7", 404),
    ],
)
def test_the_callback_refuses_what_names_no_checkout(live_server, accounts, query, status):
    answer = requests.get(f"{live_server}/api/payments/paystack/callback{query}", timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.json()["success"] is False and answer.json()["error"]


def test_the_callback_of_an_mpesa_payment_is_not_found(app, live_server, accounts):
    with app.app_context():
        stk_payment(accounts["merchant"]["id"], "WS-1700000000000-MPESA002", api="water", meta={"liters": 10})
    answer = requests.get(f"{live_server}/api/payments/paystack/callback?reference=WS-1700000000000-MPESA002")
    assert (answer.status_code, answer.json()["error"]) == (404, "TRANSACTION_NOT_FOUND")


def test_the_public_callback_spends_the_water_rate_limit_like_every_route(app, api, live_server, limits_on):
    reference = initialize(api)["transactionReference"]
    landed = requests.get(f"{live_server}/api/payments/paystack/callback?reference={reference}", timeout=10)
    assert landed.status_code == 200 and landed.headers["X-RateLimit-Limit"] == "100"
    assert landed.headers["X-RateLimit-Remaining"] == "98"  # initialize spent one
    assert api.get(f"/api/payments/status/{reference}").headers["X-RateLimit-Remaining"] == "97"


def test_a_station_key_cannot_start_or_verify_a_checkout(app, api, kiosk):
    reference = initialize(api)["transactionReference"]
    for answer in (
        kiosk.post(INITIALIZE, json={"email": "jane@example.com", "amount": 50}),
        kiosk.get(f"/api/payments/paystack/verify/{reference}"),
    ):
        assert (answer.status_code, answer.json()["error"]) == (401, "UNAUTHORIZED")
    assert kiosk.get(f"/api/payments/status/{reference}").status_code == 200  # a station route: it may look
    with app.app_context():
        assert Payment.query.count() == 1
