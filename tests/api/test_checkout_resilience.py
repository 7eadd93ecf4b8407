"""What happens to a push when our own parts fail: nothing stays pending, no key is wedged."""

from datetime import timedelta

import redis

from portal.extensions import db
from portal.models import IdempotencyRecord, Payment, PaymentEvent, PaymentStatus
from portal.queueing import redis_client
from portal.services.sweeper import sweep
from portal.timeutil import utcnow
from tests.helpers import stk_payment

S = PaymentStatus
BODY = {"phone": "254708374149", "amount": 10}


def dead_redis() -> redis.Redis:
    """A real client for a Redis that is not there: every command fails to connect."""
    return redis_client("redis://127.0.0.1:1/0")  # the app's own client, with its retry budget


def test_a_token_cache_outage_fails_the_payment_and_frees_the_key(ctx, app, client, accounts, live_server):
    headers = {"Authorization": f"Bearer {accounts['merchant']['api_key']}", "Idempotency-Key": "order-9"}
    working = app.extensions["redis"]
    app.extensions["redis"] = dead_redis()
    try:
        answer = client.post("/initiate_payment", json=BODY, headers=headers)
    finally:
        app.extensions["redis"] = working
    assert answer.status_code == 503, answer.get_json()
    payment = Payment.query.one()
    assert payment.status == S.FAILED  # never left pending
    assert "token cache" in PaymentEvent.query.filter_by(to_status=S.FAILED).one().detail
    assert IdempotencyRecord.query.count() == 0  # a 5xx is not kept: the client may retry with the key

    retry = client.post("/initiate_payment", json=BODY, headers=headers)
    assert retry.status_code == 200, retry.get_json()


def test_a_key_whose_request_died_is_claimed_again(ctx, client, accounts, live_server):
    merchant_id = accounts["merchant"]["id"]
    db.session.add(
        IdempotencyRecord(
            merchant_id=merchant_id,
            api="checkout",
            key="order-dead",
            request_hash="x",
            created_at=utcnow() - timedelta(minutes=3),
        )
    )  # never answered
    db.session.commit()
    headers = {"Authorization": f"Bearer {accounts['merchant']['api_key']}", "Idempotency-Key": "order-dead"}
    answer = client.post("/initiate_payment", json=BODY, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    again = client.post("/initiate_payment", json=BODY, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_a_key_in_flight_is_still_refused(ctx, client, accounts):
    from portal.api.checkout import InitiatePayment
    from portal.services.idempotency import request_hash

    db.session.add(
        IdempotencyRecord(
            merchant_id=accounts["merchant"]["id"],
            api="checkout",
            key="order-live",
            request_hash=request_hash(InitiatePayment(**BODY).model_dump()),
            created_at=utcnow() - timedelta(seconds=5),
        )
    )
    db.session.commit()
    headers = {"Authorization": f"Bearer {accounts['merchant']['api_key']}", "Idempotency-Key": "order-live"}
    assert client.post("/initiate_payment", json=BODY, headers=headers).status_code == 409


def test_keys_expire_after_their_window(ctx, app, client, accounts, live_server):
    headers = {"Authorization": f"Bearer {accounts['merchant']['api_key']}", "Idempotency-Key": "order-old"}
    assert client.post("/initiate_payment", json=BODY, headers=headers).status_code == 200
    record = IdempotencyRecord.query.one()
    record.created_at = utcnow() - timedelta(seconds=app.config.get("IDEMPOTENCY_TTL", 86400) + 60)
    db.session.commit()
    # past the window the key is forgotten: a new body is a new request, not a 422
    answer = client.post("/initiate_payment", json={"phone": "254711223344", "amount": 11}, headers=headers)
    assert answer.status_code == 200 and "Idempotent-Replayed" not in answer.headers
    assert Payment.query.count() == 2
    record = IdempotencyRecord.query.one()
    record.created_at = utcnow() - timedelta(days=2)
    db.session.commit()
    assert sweep()["idempotency_expired"] == 1
    assert IdempotencyRecord.query.count() == 0


def test_a_payment_stuck_pending_is_settled_by_the_sweeper(ctx, app, accounts):
    """The process that pushed died before Daraja's acknowledgement: the sweeper says so."""
    merchant_id = accounts["merchant"]["id"]
    too_long = timedelta(seconds=app.config["SWEEP_PENDING_AFTER"] + 60)
    stuck = stk_payment(merchant_id, "PAYSTUCK", S.PENDING, created_at=utcnow() - too_long)
    fresh = stk_payment(merchant_id, "PAYFRESH", S.PENDING)
    assert sweep()["pending_timed_out"] == 1
    db.session.expire_all()
    assert (stuck.status, fresh.status) == (S.TIMEOUT, S.PENDING)
    event = PaymentEvent.query.filter_by(payment_id=stuck.id).one()
    assert event.source == "sweeper" and "outcome is unknown" in event.detail
