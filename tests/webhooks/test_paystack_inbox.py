"""Paystack's webhooks through the inbox, in process: the hot path is a few explicit statements,
the signature is checked against the merchant owning the reference (another merchant's key does
not sign for it), and a stored row is read again by the sweeper the same way."""

import json

from portal.extensions import db
from portal.models import Callback, Merchant, Payment
from portal.providers.paystack import signature
from portal.services import inbox
from tests.helpers import stk_payment
from tests.webhooks.test_daraja_inbox import counted

REFERENCE = "booking-inbox0000000001"


def paystack_payment(merchant_id: int, status: str = "processing") -> Payment:
    return stk_payment(merchant_id, REFERENCE, status, rail="paystack", kind="checkout", api="bookings", amount=100000)


def event(reference: str = REFERENCE, amount: int = 100000) -> bytes:
    data = {"id": 7, "reference": reference, "status": "success", "amount": amount, "currency": "KES"}
    return json.dumps({"event": "charge.success", "data": {**data, "channel": "card"}}).encode()


def post(client, body: bytes, key: str | None):
    headers = {"x-paystack-signature": signature(body, key)} if key else {}
    return client.post("/api/payments/webhook", data=body, content_type="application/json", headers=headers)


def key_of(merchant_id: int) -> str:
    return db.session.get(Merchant, merchant_id).paystack_secret_key


def test_webhook_ingest_is_a_few_explicit_statements(ctx, client, accounts):
    merchant_id = accounts["merchant"]["id"]
    paystack_payment(merchant_id)
    key = key_of(merchant_id)
    with counted() as applied:
        assert post(client, event(), key).status_code == 200
    with counted() as duplicate:
        assert post(client, event(), key).status_code == 200
    assert [c.outcome for c in Callback.query.order_by(Callback.id)] == ["applied", "duplicate"]
    # store raw; the payment with its merchant; compare-and-set and the event (on PostgreSQL one
    # statement); the row's outcome
    if db.engine.dialect.name == "postgresql":
        assert applied == ["INSERT", "SELECT", "WITH", "UPDATE"], applied
    else:
        assert applied == ["INSERT", "SELECT", "UPDATE", "INSERT", "UPDATE"], applied
    assert duplicate == ["INSERT", "SELECT", "UPDATE"], duplicate


def test_another_merchants_key_does_not_sign_for_this_merchants_payment(ctx, client, accounts):
    paystack_payment(accounts["merchant"]["id"])
    answer = post(client, event(), key_of(accounts["other_merchant"]["id"]))
    assert answer.status_code == 401
    assert Payment.query.filter_by(reference=REFERENCE).one().status == "processing"
    row = Callback.query.one()
    assert row.outcome == "rejected" and "signature" in row.outcome_detail


def test_an_unknown_reference_is_kept_as_an_orphan_and_acknowledged(ctx, client, accounts):
    assert post(client, event("booking-nobody"), None).status_code == 200
    row = Callback.query.one()
    assert (row.outcome, row.provider_id, row.merchant_id) == ("orphan", "booking-nobody", None)


def test_a_stored_webhook_read_again_is_judged_by_its_stored_signature(ctx, client, accounts):
    merchant_id = accounts["merchant"]["id"]
    paystack_payment(merchant_id)
    body = event()
    item = inbox.store(
        "paystack",
        "webhook",
        body,
        path="/api/payments/webhook",
        query_string="",
        headers={"X-Paystack-Signature": signature(body, key_of(merchant_id))},
        source_ip="52.31.139.75",
    )
    assert inbox.reread(db.session.get(Callback, item.id)).outcome == "applied"  # a header's case does not matter
    assert Payment.query.filter_by(reference=REFERENCE).one().status == "completed"
