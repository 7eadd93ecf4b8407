"""The payment state machine and the sweeper's give-up rule, against the real database."""

from datetime import timedelta

import pytest

from portal.extensions import db
from portal.models import Payment, PaymentEvent, PaymentStatus
from portal.services.mpesa import StkResult, apply_stk_result, status_for_result
from portal.services.sweeper import sweep
from portal.services.transitions import transition
from portal.timeutil import utcnow
from tests.helpers import stk_payment

S = PaymentStatus


def make_payment(merchant_id, status=S.PROCESSING, **kw) -> Payment:
    return stk_payment(merchant_id, f"PAYSM{kw.pop('n', 1)}", status, **kw)


@pytest.mark.parametrize(
    "code,status",
    [
        (0, S.COMPLETED),
        ("0", S.COMPLETED),
        (1032, S.CANCELLED),
        (1037, S.TIMEOUT),
        (1, S.FAILED),
        (2001, S.FAILED),
        ("SFC_IC0003", S.FAILED),
        (17, S.FAILED),
    ],
)
def test_result_codes_map_to_statuses(code, status):
    assert status_for_result(code) == status


@pytest.mark.parametrize(
    "start,target,allowed",
    [
        (S.PENDING, S.PROCESSING, True),
        (S.PENDING, S.FAILED, True),
        (S.PENDING, S.COMPLETED, False),
        (S.PROCESSING, S.COMPLETED, True),
        (S.PROCESSING, S.CANCELLED, True),
        (S.PROCESSING, S.TIMEOUT, True),
        (S.TIMEOUT, S.COMPLETED, True),
        (S.CANCELLED, S.COMPLETED, True),
        (S.TIMEOUT, S.FAILED, True),
        (S.COMPLETED, S.FAILED, False),
        (S.COMPLETED, S.CANCELLED, False),
        (S.FAILED, S.COMPLETED, False),
        (S.CANCELLED, S.FAILED, False),
        (S.COMPLETED, S.REVERSED, True),
        (S.PROCESSING, S.REVERSED, True),  # a payout (transfer) sent back before it was paid
        (S.PENDING, S.REVERSED, False),
        (S.REVERSED, S.COMPLETED, False),
    ],
)
def test_transitions_follow_the_state_machine(ctx, accounts, start, target, allowed):
    p = make_payment(accounts["merchant"]["id"], status=start)
    assert transition(p, target, "test") is allowed
    db.session.commit()
    assert p.status == (target if allowed else start)
    events = PaymentEvent.query.filter_by(payment_id=p.id).all()
    assert [(e.from_status, e.to_status) for e in events] == ([(start, target)] if allowed else [])


def test_a_transition_writes_the_fields_it_is_given_by_attribute_name(ctx, accounts):
    p = make_payment(accounts["merchant"]["id"], meta={"bookingId": "b1"})
    assert transition(p, S.COMPLETED, "test", meta={"bookingId": "b1", "was": S.PROCESSING}, receipt="R1")
    db.session.commit()
    db.session.expire_all()
    assert (p.meta, p.receipt) == ({"bookingId": "b1", "was": S.PROCESSING}, "R1")


def test_final_payment_ignores_a_contradicting_result(ctx, accounts):
    p = make_payment(accounts["merchant"]["id"])
    assert apply_stk_result(p, StkResult("0", "ok", "QK12345678", "20231201120000"), "callback") == "applied"
    assert apply_stk_result(p, StkResult("1032", "Request cancelled by user"), "callback") == "stale"
    assert apply_stk_result(p, StkResult("0", "ok", "QK12345678", "20231201120000"), "callback") == "duplicate"
    db.session.commit()
    assert (p.status, p.receipt, p.result_code) == (S.COMPLETED, "QK12345678", "0")
    assert p.completed_at is not None


def test_a_transition_writes_the_fields_it_is_given_by_their_attribute_names(ctx, accounts):
    """`meta` is the column `metadata`: written on both databases, never silently dropped."""
    p = make_payment(accounts["merchant"]["id"], meta={"liters": 10})
    assert transition(p, S.COMPLETED, "test", receipt="QK12345678", meta={"liters": 10, "channel": "card"})
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Payment, p.id)
    assert (stored.receipt, stored.meta) == ("QK12345678", {"liters": 10, "channel": "card"})
    with pytest.raises(KeyError):
        transition(make_payment(accounts["merchant"]["id"], n=2), S.COMPLETED, "test", no_such_column=1)


def test_sweeper_times_out_payments_silent_for_thirty_minutes(ctx, app, accounts):
    old = make_payment(accounts["merchant"]["id"], n=1, created_at=utcnow() - timedelta(minutes=31))
    young = make_payment(
        accounts["merchant"]["id"], n=2, created_at=utcnow() - timedelta(minutes=5), checkout_request_id="ws_CO_young"
    )
    app.config["SWEEP_QUERY_AFTER"] = 3600  # only the give-up rule is under test here
    result = sweep()
    assert {k: result[k] for k in ("timed_out", "queried", "callbacks_read")} == {
        "timed_out": 1,
        "queried": 0,
        "callbacks_read": 0,
    }
    db.session.refresh(old)
    db.session.refresh(young)
    assert (old.status, young.status) == (S.TIMEOUT, S.PROCESSING)
    event = PaymentEvent.query.filter_by(payment_id=old.id).one()
    assert (event.source, event.to_status) == ("sweeper", S.TIMEOUT)
    assert "30 minutes" in event.detail


def test_sweeper_asks_about_silent_payments_once_per_interval(ctx, app, accounts):
    p = make_payment(
        accounts["merchant"]["id"], checkout_request_id="ws_CO_silent", created_at=utcnow() - timedelta(minutes=2)
    )
    app.config.update(SWEEP_QUERY_AFTER=60, SWEEP_QUERY_EVERY=30)
    assert sweep()["queried"] == 1
    assert sweep()["queried"] == 0  # asked a moment ago
    db.session.refresh(p)
    assert p.last_queried_at is not None


def test_sweeper_reads_callbacks_that_were_stored_but_never_interpreted(ctx, app, accounts):
    import json

    from portal.models import Callback
    from portal.services.links import callback_token

    p = make_payment(accounts["merchant"]["id"], checkout_request_id="ws_CO_stored")
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "1",
                "CheckoutRequestID": "ws_CO_stored",
                "ResultCode": 1032,
                "ResultDesc": "Request cancelled by user",
            }
        }
    }
    db.session.add(
        Callback(
            provider="daraja",
            kind="stk",
            path="/callback",
            body=json.dumps(body),
            headers={},
            query_string=f"ref={p.reference}&token={callback_token(p.reference)}",
            received_at=utcnow() - timedelta(minutes=2),
        )
    )
    db.session.commit()
    assert sweep()["callbacks_read"] == 1
    db.session.refresh(p)
    assert p.status == S.CANCELLED
    assert Callback.query.one().outcome == "applied"
    assert sweep()["callbacks_read"] == 0
