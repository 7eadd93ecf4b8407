"""The bookings API's payments over HTTP, against the Paystack simulator with the real worker:
a checkout paid by card, M-Pesa prompts by the DESIGN outcome table, verify, the shared status
route, retry chains, cancel (and a payment that still arrives after it), a payer's history, the
signed webhook, refusals in the document's format and another merchant's references."""

import json

import pytest

from portal.extensions import db
from portal.models import Callback, Escrow, Merchant, Payment, PaymentEvent
from portal.providers.paystack import signature
from tests.conftest import wait_for
from tests.helpers import Checkout, settled

BOOKING = {"email": "parent@example.com", "amount": 1000, "bookingId": "booking_123"}


def status_of(api, reference: str) -> dict:
    answer = api.get(f"/api/payments/status/{reference}")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def settles(api, reference: str, status: str, timeout: float = 20.0) -> dict:
    """The payment's status answer once it reads `status`."""
    seen = {}

    def reached():
        seen.update(status_of(api, reference))
        return seen["status"] == status

    wait_for(reached, timeout=timeout, what=f"{reference} to be {status}")
    return seen


def timeline(app, reference: str) -> list[tuple]:
    with app.app_context():
        payment = Payment.query.filter_by(reference=reference).one()
        events = PaymentEvent.query.filter_by(payment_id=payment.id).order_by(PaymentEvent.id)
        return [(e.from_status, e.to_status, e.source, e.detail) for e in events]


def initialize(api, **fields) -> dict:
    answer = api.post("/api/payments/initialize", json={**BOOKING, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def charge(api, phone: str, path: str = "/api/payments/mpesa", **fields) -> dict:
    answer = api.post(path, json={**BOOKING, "phone": phone, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def secret_key(app, name: str = "Demo Shop") -> str:
    with app.app_context():
        return Merchant.query.filter_by(name=name).one().paystack_secret_key


# -- initialize and a checkout paid by card ------------------------------------------------------
def test_a_checkout_paid_by_card_is_success_everywhere(app, api):
    body = initialize(api, metadata={"payment_type": "booking_fee", "user_id": "user_456"})
    assert body["success"] is True and body["message"] == "Payment initialized successfully"
    data = body["data"]
    assert set(data) == {"reference", "access_code", "authorization_url"}
    assert data["reference"].startswith("booking-")
    assert data["authorization_url"].endswith(f"/sandbox/paystack/checkout/{data['access_code']}")
    assert status_of(api, data["reference"])["status"] == "pending"

    paid = Checkout(data["authorization_url"]).post("card", card_number="4084 0840 8408 4081")
    assert paid.status_code == 200  # no callbackUrl: the page says what happened

    shown = settles(api, data["reference"], "success")  # the signed charge.success webhook
    assert shown["bookingId"] == "booking_123" and shown["email"] == "parent@example.com"
    assert (shown["amount"], shown["paymentMethod"], shown["phone"]) == (1000, "card", None)
    assert isinstance(shown["createdAt"], int) and shown["completedAt"] >= shown["createdAt"]
    assert shown["createdAt"] > 1_700_000_000_000  # milliseconds, not seconds

    verified = api.get(f"/api/payments/verify/{data['reference']}").json()
    assert verified["message"] == "Payment verified successfully"
    assert verified["data"]["status"] == "success" and verified["data"]["channel"] == "card"
    assert verified["data"]["amount"] == 1000 and verified["data"]["paid_at"].endswith("Z")
    with app.app_context():
        [webhook] = Callback.query.filter_by(provider="paystack").all()
        assert (webhook.outcome, webhook.kind) == ("applied", "webhook")


def test_a_callback_url_brings_the_payer_back_with_the_reference(api):
    data = initialize(api, callbackUrl="https://tutors.example/paid?booking=123")["data"]
    back = Checkout(data["authorization_url"]).post("card", card_number="4084084084084081")
    assert back.status_code == 303
    assert back.headers["Location"].startswith("https://tutors.example/paid?booking=123&trxref=")


# -- M-Pesa through Paystack -------------------------------------------------------------------
def test_an_mpesa_prompt_answers_as_documented_and_settles_success(app, api):
    answer = api.post("/api/payments/mpesa", json={**BOOKING, "phone": "0712345678", "metadata": {"user_id": "u1"}})
    assert answer.json() == {
        "success": True,
        "message": "MPesa STK push sent. Please check your phone to complete payment.",
        "data": {
            "reference": answer.json()["data"]["reference"],
            "status": "pending",
            "display_text": "Check your phone for payment prompt",
        },
    }
    reference = answer.json()["data"]["reference"]
    assert reference.startswith("mpesa-") and not reference.startswith("mpesa-direct-")
    shown = settles(api, reference, "success")
    assert (shown["phone"], shown["paymentMethod"]) == ("254712345678", "mpesa")


def test_a_direct_charge_needs_no_booking(api):
    answer = api.post(
        "/api/payments/mpesa/direct", json={"phone": "254712345678", "amount": 1000, "email": "p@example.com"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["message"] == "MPesa payment initiated. Check your phone for the prompt."
    assert body["data"]["display_text"] == "Enter your MPesa PIN to complete"
    assert body["data"]["reference"].startswith("mpesa-direct-")
    assert settles(api, body["data"]["reference"], "success")["bookingId"] is None


@pytest.mark.parametrize("ending, status", [("1032", "failed"), ("2001", "failed"), ("1037", "failed")])
def test_a_prompt_that_fails_is_failed_when_verified(app, api, ending, status):
    reference = charge(api, f"071234{ending}")["reference"]
    settled(app)  # the prompt has closed; Paystack sends no webhook for a failure

    def verified():
        return api.get(f"/api/payments/verify/{reference}").json()["data"]["status"] == status

    wait_for(verified, what=f"verify to say {status}")
    assert status_of(api, reference)["status"] == status


def test_a_success_whose_webhook_is_lost_is_found_by_verify(app, api):
    reference = charge(api, "0712349999")["reference"]
    settled(app)
    assert status_of(api, reference)["status"] == "pending"  # no webhook, ever
    wait_for(lambda: api.get(f"/api/payments/verify/{reference}").json()["data"]["status"] == "success")


def test_the_sweeper_verifies_silent_payments(app, api):
    reference = charge(api, "0712349999")["reference"]
    settled(app)
    app.config["SWEEP_QUERY_AFTER"] = 0.0
    try:
        with app.app_context():
            from portal.services import sweeper

            wait_for(lambda: sweeper.sweep()["paystack_silent"] >= 0 and _status(app, reference) == "completed")
    finally:
        app.config["SWEEP_QUERY_AFTER"] = 60.0
    assert ("processing", "completed", "sweeper") in [e[:3] for e in timeline(app, reference)]


def _status(app, reference: str) -> str:
    with app.app_context():
        return db.session.scalar(db.select(Payment.status).where(Payment.reference == reference))


# -- retry -------------------------------------------------------------------------------------
def test_a_failed_payment_is_retried_as_a_chain(app, api):
    first = charge(api, "0712341032")["reference"]
    wait_for(lambda: api.get(f"/api/payments/verify/{first}").json()["data"]["status"] == "failed")

    answer = api.post(f"/api/payments/retry/{first}", json={"phone": "0712341032", "email": "p@example.com"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Payment retry initiated"
    second = answer.json()["data"]
    assert second["originalReference"] == first and second["retryCount"] == 1
    assert second["newReference"].startswith("retry-")
    wait_for(lambda: api.get(f"/api/payments/verify/{second['newReference']}").json()["data"]["status"] == "failed")

    third = api.post(f"/api/payments/retry/{second['newReference']}", json={"phone": "0712345678"}).json()["data"]
    assert third["retryCount"] == 2
    shown = settles(api, third["newReference"], "success")
    assert shown["bookingId"] == "booking_123" and shown["phone"] == "254712345678"

    again = api.post(f"/api/payments/retry/{first}", json={})
    assert again.status_code == 409 and again.json()["error"] == "ALREADY_RETRIED"
    assert second["newReference"] in again.json()["message"]
    paid = api.post(f"/api/payments/retry/{third['newReference']}", json={})
    assert paid.status_code == 400 and paid.json()["error"] == "NOT_RETRYABLE"


# -- cancel ------------------------------------------------------------------------------------
def test_a_pending_payment_is_cancelled_and_a_late_success_is_kept_and_flagged(app, api):
    data = initialize(api)["data"]
    answer = api.post(f"/api/payments/cancel/{data['reference']}", json={"reason": "User requested cancellation"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Payment cancelled successfully"
    assert answer.json()["data"]["reference"] == data["reference"]
    assert isinstance(answer.json()["data"]["cancelledAt"], int)
    assert status_of(api, data["reference"])["status"] == "cancelled"
    twice = api.post(f"/api/payments/cancel/{data['reference']}", json={})
    assert twice.status_code == 400 and twice.json()["error"] == "NOT_CANCELLABLE"

    # the payer had the page open and pays anyway: the money is recorded, never lost
    Checkout(data["authorization_url"]).post("card", card_number="4084084084084081")
    settles(api, data["reference"], "success")
    events = timeline(app, data["reference"])
    assert events[-1][:3] == ("cancelled", "completed", "query")  # applied only as verify told it
    assert "flagged for refund" in events[-1][3]

    def held_for_refund():
        with app.app_context():
            row = Escrow.query.join(Payment, Payment.id == Escrow.payment_id).filter_by(reference=data["reference"])
            row = row.one_or_none()
            return row is not None and row.refund_due and "cancelled" in row.refund_reason

    wait_for(held_for_refund, what="the payment held on /escrow, flagged for refund")
    with app.app_context():
        [webhook] = Callback.query.filter_by(provider="paystack").all()
        assert webhook.outcome == "rejected" and "asking Paystack" in webhook.outcome_detail


def test_a_second_prompt_to_a_busy_phone_is_refused(app, api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30  # nobody answers the first prompt meanwhile
    charge(api, "0712345678")
    answer = api.post("/api/payments/mpesa", json={**BOOKING, "phone": "0712345678"})
    assert answer.status_code == 409 and answer.json()["error"] == "DUPLICATE_TRANSACTION"
    with app.app_context():
        assert [p.status for p in Payment.query.order_by(Payment.id)][1] == "failed"


def test_only_pending_payments_can_be_cancelled(app, api):
    reference = charge(api, "0712345678")["reference"]
    settles(api, reference, "success")
    answer = api.post(f"/api/payments/cancel/{reference}", json={"reason": "too late"})
    assert answer.status_code == 400 and "success" in answer.json()["message"]
    assert status_of(api, reference)["status"] == "success"


# -- history -----------------------------------------------------------------------------------
def test_a_payers_history_pages_and_filters(app, api):
    made = [charge(api, phone, metadata={"user_id": "user_9"})["reference"] for phone in ("0712345671", "0712345672")]
    failed = charge(api, "0712341032", metadata={"user_id": "user_9"})["reference"]
    charge(api, "0712345673", metadata={"user_id": "someone_else"})
    settles(api, made[0], "success")
    settles(api, made[1], "success")
    wait_for(lambda: api.get(f"/api/payments/verify/{failed}").json()["data"]["status"] == "failed")

    body = api.get("/api/payments/history/user_9").json()
    assert body["success"] is True
    data = body["data"]
    assert (data["total"], data["limit"], data["offset"]) == (3, 50, 0)
    assert [t["reference"] for t in data["transactions"]] == [failed, made[1], made[0]]  # newest first
    assert set(data["transactions"][0]) >= {"reference", "amount", "status", "createdAt"}

    page = api.get("/api/payments/history/user_9?limit=1&offset=1").json()["data"]
    assert [t["reference"] for t in page["transactions"]] == [made[1]] and page["total"] == 3
    paid = api.get("/api/payments/history/user_9?status=success").json()["data"]
    assert paid["total"] == 2 and {t["status"] for t in paid["transactions"]} == {"success"}
    assert api.get("/api/payments/history/nobody").json()["data"]["transactions"] == []


def test_another_merchant_sees_only_its_own_payers_history(api, other_api):
    charge(api, "0712345678", metadata={"user_id": "user_9"})
    assert api.get("/api/payments/history/user_9").json()["data"]["total"] == 1
    theirs = other_api.get("/api/payments/history/user_9")
    assert theirs.status_code == 200 and theirs.json()["data"] == {
        "transactions": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=²", "offset=-1", "status=paid", "limit=1e3"])
def test_history_refuses_bad_parameters(api, query):
    answer = api.get(f"/api/payments/history/user_9?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False and answer.json()["error"] == "VALIDATION_ERROR"


# -- the webhook -------------------------------------------------------------------------------
def _charge_success(reference: str, amount: int = 100000) -> bytes:
    data = {"id": 1, "reference": reference, "status": "success", "amount": amount, "currency": "KES"}
    return json.dumps(
        {"event": "charge.success", "data": {**data, "channel": "card", "gateway_response": "ok"}}
    ).encode()


def test_a_forged_webhook_is_refused_and_changes_nothing(app, api):
    reference = initialize(api)["data"]["reference"]
    body = _charge_success(reference)
    for headers in ({}, {"x-paystack-signature": "0" * 128}, {"x-paystack-signature": signature(body, "sk_test_x")}):
        answer = api.post("/api/payments/webhook", data=body, headers={"Content-Type": "application/json", **headers})
        assert answer.status_code == 401, answer.text
        assert answer.json() == {"success": False, "message": "Invalid signature", "error": "INVALID_SIGNATURE"}
    assert status_of(api, reference)["status"] == "pending"
    with app.app_context():
        assert [c.outcome for c in Callback.query.filter_by(provider="paystack")] == ["rejected"] * 3


def test_a_signed_webhook_delivered_three_times_is_applied_once(app, api):
    reference = initialize(api)["data"]["reference"]
    body = _charge_success(reference)
    headers = {"Content-Type": "application/json", "x-paystack-signature": signature(body, secret_key(app))}
    for _ in range(3):
        assert api.post("/api/payments/webhook", data=body, headers=headers).status_code == 200
    assert status_of(api, reference)["status"] == "success"
    assert [e[1] for e in timeline(app, reference)].count("completed") == 1
    with app.app_context():
        outcomes = [c.outcome for c in Callback.query.filter_by(provider="paystack").order_by(Callback.id)]
    assert outcomes == ["applied", "duplicate", "duplicate"]


def test_a_signed_webhook_for_another_amount_is_not_applied_as_sent(app, api):
    reference = initialize(api)["data"]["reference"]
    body = _charge_success(reference, amount=100)  # KES 1, not 1,000
    headers = {"Content-Type": "application/json", "x-paystack-signature": signature(body, secret_key(app))}
    assert api.post("/api/payments/webhook", data=body, headers=headers).status_code == 200
    settled(app)  # the verify it asked for: Paystack says nobody has paid
    assert status_of(api, reference)["status"] == "pending"


@pytest.mark.parametrize(
    "raw", [b"", b"\x00\xff", b'{"event": "charge.success"}', b"[" * 50000, b'{"event":1,"data":{}}']
)
def test_any_bytes_are_stored_and_acknowledged(app, api, raw):
    answer = api.post("/api/payments/webhook", data=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    with app.app_context():
        [row] = Callback.query.filter_by(provider="paystack").all()
        assert bytes(row.raw) == raw and row.outcome == "invalid"


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, change, field",
    [
        ("/api/payments/initialize", {"email": "not-an-email"}, "email"),
        ("/api/payments/initialize", {"amount": 0}, "amount"),
        ("/api/payments/initialize", {"amount": 2.99}, "amount"),  # Paystack's smallest KES payment is 3
        ("/api/payments/initialize", {"amount": 10.005}, "amount"),
        ("/api/payments/initialize", {"amount": "1000"}, "amount"),
        ("/api/payments/initialize", {"bookingId": "x" * 101}, "bookingId"),
        ("/api/payments/initialize", {"bookingId": "bad\x00id"}, "bookingId"),
        ("/api/payments/initialize", {"callbackUrl": "javascript:alert(1)"}, "callbackUrl"),
        ("/api/payments/mpesa", {"phone": "0733123456"}, "phone"),
        ("/api/payments/mpesa", {"amount": 10.5}, "amount"),
        ("/api/payments/mpesa", {"amount": 250_001}, "amount"),
        ("/api/payments/mpesa/direct", {"phone": None}, "phone"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(app, api, path, change, field):
    body = {**BOOKING, "phone": "0712345678", **change}
    answer = api.post(path, json={k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert (error["success"], error["error"]) == (False, "VALIDATION_ERROR")
    assert error["errors"][0]["field"] == field
    with app.app_context():
        assert Payment.query.count() == 0


def test_non_finite_amounts_are_refused(api):
    for raw in ('{"amount": NaN}', '{"amount": 1e309}', '{"amount": Infinity}'):
        body = raw.replace("}", ', "email": "a@b.co", "bookingId": "b1"}')
        answer = api.post("/api/payments/initialize", data=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (raw, answer.text)


def test_another_merchants_reference_is_not_found(api, other_api):
    reference = initialize(api)["data"]["reference"]
    for method, path in [
        ("get", f"/api/payments/status/{reference}"),
        ("get", f"/api/payments/verify/{reference}"),
        ("post", f"/api/payments/retry/{reference}"),
        ("post", f"/api/payments/cancel/{reference}"),
    ]:
        answer = getattr(other_api, method)(path, json={})
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json() == {"success": False, "message": "Transaction not found", "error": "TRANSACTION_NOT_FOUND"}
    assert status_of(api, reference)["status"] == "pending"


def test_a_station_key_does_not_see_bookings_payments(api, kiosk):
    reference = initialize(api)["data"]["reference"]
    assert kiosk.get(f"/api/payments/status/{reference}").status_code == 404


def test_a_merchant_without_paystack_is_told_so(app, api):
    with app.app_context():
        merchant = Merchant.query.filter_by(name="Demo Shop").one()
        merchant.paystack_secret_key = None
        db.session.commit()
    answer = api.post("/api/payments/initialize", json=BOOKING)
    assert answer.status_code == 503 and answer.json()["error"] == "NOT_CONFIGURED"
    with app.app_context():
        assert Payment.query.count() == 0


def test_an_escrow_payout_is_not_a_payers_payment(app, api, accounts):
    from tests.helpers import stk_payment

    with app.app_context():
        stk_payment(
            accounts["merchant"]["id"],
            "trf-payout-0000000000001",
            "completed",
            rail="paystack",
            kind="transfer",
            api="bookings",
            user_ref="user_9",
            checkout_request_id=None,
        )
    for path in ("/api/payments/status/", "/api/payments/verify/"):
        assert api.get(path + "trf-payout-0000000000001").status_code == 404
    assert api.post("/api/payments/cancel/trf-payout-0000000000001", json={}).status_code == 404
    assert api.get("/api/payments/history/user_9").json()["data"]["total"] == 0
