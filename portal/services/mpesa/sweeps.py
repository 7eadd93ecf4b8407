"""The M-Pesa rail's sweeper steps: payments stuck before Daraja's acknowledgement, silent
payments to ask Daraja about, and payments given up on after SWEEP_TIMEOUT_AFTER."""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from portal.extensions import db
from portal.models import Payment, PaymentStatus
from portal.services.mpesa import b2c
from portal.services.mpesa.stk import ask_daraja
from portal.services.sweeper import BATCH, each_row, step
from portal.services.transitions import transition
from portal.timeutil import utcnow

S = PaymentStatus


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(current_app.config[name]))


def _oldest_first(query):
    """Rows the sweeper failed on lately go to the back, so they never hold up the others."""
    return query.order_by(Payment.last_queried_at.is_not(None), Payment.last_queried_at, Payment.id).limit(BATCH)


def record_failure(payment_id: int, exc: Exception) -> None:
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(sweep_error=f"{exc.__class__.__name__}: {exc}"[:500], last_queried_at=utcnow())
        .execution_options(synchronize_session=False)
    )


@step("pending_timed_out")
def stuck_pending(now: datetime) -> int:
    """A payment still pending long after its push began: the process that pushed died
    before it heard back. Nobody can ask Daraja without a CheckoutRequestID, so the outcome
    is unknown (timeout); a late callback through its URL can still settle it."""
    after = _seconds("SWEEP_PENDING_AFTER")
    detail = (
        f"no acknowledgement from M-Pesa {int(after.total_seconds())} s after the push began; "
        "the outcome is unknown until M-Pesa reports it"
    )
    return _time_out(now, S.PENDING, after, detail, Payment.rail == "mpesa", Payment.kind == "stk_push")


@step("timed_out")
def give_up(now: datetime) -> int:
    after = _seconds("SWEEP_TIMEOUT_AFTER")
    return _time_out(
        now,
        S.PROCESSING,
        after,
        f"no result from the provider after {int(after.total_seconds() // 60)} minutes",  # M-Pesa or Paystack
        # a payout is never given up on: Transaction Status (B2C) or Paystack's verify (transfers) settles it
        Payment.kind.not_in(("b2c", "transfer")),
    )


def _time_out(now: datetime, status: str, after: timedelta, detail: str, *where) -> int:
    """Moves payments `status` for longer than `after` to timeout, one row at a time."""
    rows = db.session.scalars(
        _oldest_first(select(Payment).where(Payment.status == status, Payment.created_at < now - after, *where))
    ).all()
    return each_row(rows, lambda p: transition(p, S.TIMEOUT, "sweeper", detail, current=status), record_failure)


@step("queried")
def ask_about_silent(now: datetime) -> int:
    rows = db.session.scalars(
        select(Payment)
        .where(
            Payment.status == S.PROCESSING,
            Payment.rail == "mpesa",
            Payment.kind == "stk_push",
            Payment.checkout_request_id.isnot(None),
            Payment.created_at < now - _seconds("SWEEP_QUERY_AFTER"),
            or_(Payment.last_queried_at.is_(None), Payment.last_queried_at < now - _seconds("SWEEP_QUERY_EVERY")),
        )
        .order_by(Payment.created_at)
        .limit(BATCH)
    ).all()

    def ask(payment: Payment) -> None:
        payment.last_queried_at = now
        ask_daraja(payment.id)

    return each_row(rows, ask, record_failure)


def _payouts(now: datetime, status: str):
    return db.session.scalars(
        select(Payment)
        .where(
            Payment.status == status,
            Payment.kind == "b2c",
            Payment.created_at < now - _seconds("SWEEP_QUERY_AFTER"),
            or_(Payment.last_queried_at.is_(None), Payment.last_queried_at < now - _seconds("SWEEP_QUERY_EVERY")),
        )
        .order_by(Payment.created_at)
        .limit(BATCH)
    ).all()


@step("payouts_unsent")
def resend_queued(now: datetime) -> int:
    """Payouts still queued: their send job was lost (Redis) or is failing. Sending again is
    safe: the send job asks Transaction Status first about an attempt in doubt."""

    def again(payment: Payment) -> None:
        payment.last_queried_at = now
        b2c.send_later(payment.id)

    return each_row(_payouts(now, S.PENDING), again, record_failure)


@step("payouts_silent")
def ask_about_sent(now: datetime) -> int:
    """Payouts M-Pesa took and never reported on (a lost result, a queue timeout)."""

    def ask(payment: Payment) -> None:
        payment.last_queried_at = now
        b2c.ask_later(payment.id)

    return each_row(_payouts(now, S.PROCESSING), ask, record_failure)
