"""Payout answers through the inbox: "no such transaction" from Transaction Status settles a
payout only once the attempt can no longer be on its way to M-Pesa."""

import json
import time

import pytest

from portal.extensions import db
from portal.models import Callback, Payment
from portal.services.links import callback_token

NOT_FOUND = {
    "Result": {"ResultType": 0, "ResultCode": "R000002", "ResultDesc": "The OriginalTransactionID is invalid."}
}


def payout(merchant_id: int, status: str, sent_seconds_ago: float, reference: str = "B2CTEST0001") -> Payment:
    p = Payment(
        merchant_id=merchant_id,
        reference=reference,
        rail="mpesa",
        kind="b2c",
        status=status,
        amount=10000,
        phone="254712345678",
        api="gateway",
        attempts=1,
        provider_reference="b2c-1-1",
        meta={"cleared": 0, "attempt_sent_at": time.time() - sent_seconds_ago},
    )
    db.session.add(p)
    db.session.commit()
    return p


def answer(client, p: Payment, body: dict):
    ref = p.reference
    path = f"/hooks/daraja/status/result?ref={ref}&token={callback_token(ref)}&attempt=1"
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("status", ["pending", "processing"])
def test_not_found_while_the_attempt_may_still_land_settles_nothing(ctx, client, accounts, status):
    p = payout(accounts["merchant"]["id"], status, sent_seconds_ago=5)
    assert answer(client, p, NOT_FOUND).get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    db.session.expire_all()
    kept = db.session.get(Payment, p.id)
    assert (kept.status, kept.attempts, kept.meta["cleared"]) == (status, 1, 0)
    assert "not found yet" in Callback.query.one().outcome_detail


def test_not_found_after_the_doubt_fails_a_sent_payout_and_resends_a_queued_one(ctx, client, accounts):
    sent = payout(accounts["merchant"]["id"], "processing", sent_seconds_ago=1000)
    answer(client, sent, NOT_FOUND)
    db.session.expire_all()
    assert db.session.get(Payment, sent.id).status == "failed"

    queued = payout(accounts["merchant"]["id"], "pending", sent_seconds_ago=1000, reference="B2CTEST0002")
    answer(client, queued, NOT_FOUND)
    db.session.expire_all()
    assert db.session.get(Payment, queued.id).meta["cleared"] == 1  # its attempt never arrived: the next may go
