"""Paystack transfers: the merchant pays an M-Pesa wallet from its Paystack balance (escrow releases).

A transfer is a ledger row of rail paystack, kind transfer: pending (recorded; its send job will
send it), processing (Paystack took it), then completed, failed, or reversed (the money went back
to the balance). Its reference is ours and Paystack's: the transfer's idempotency key.

Guarantees (never paid twice):
- the row and its send job are committed together; the job creates the recipient (Paystack
  answers a second creation of the same account with the first), claims an attempt by a
  compare-and-set on `payments.attempts`, and only then sends the transfer, with the payment's
  reference;
- an attempt whose answer was lost is presumed to have gone through: verify_transfer settles it;
  only when Paystack still has no such transfer TRANSFER_IN_DOUBT_SECONDS after it was sent is
  it sent again, with the same reference (which Paystack refuses to pay twice);
- the signed transfer.* webhooks and verify move it processing → completed | failed | reversed,
  each move one compare-and-set: applied once however often it is told;
- a sweeper step sends again the transfers whose send job was lost and verifies those Paystack
  has been silent about.
"""

import logging
import secrets
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.paystack import (
    PaystackError,
    PaystackUnavailable,
    Transfer,
    from_subunits,
    to_subunits,
    transfer_of,
)
from portal.queueing import enqueue
from portal.services import inbox, payout_attempts
from portal.services.errors import NotConfigured
from portal.services.mpesa.sweeps import record_failure
from portal.services.paystack import events, paystack_for
from portal.services.sweeper import BATCH, each_row, step
from portal.services.transitions import create_payment, current_status, transition
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)
RAIL, KIND = "paystack", "transfer"
SEND_JOB, VERIFY_JOB = "portal.jobs.send_paystack_transfer", "portal.jobs.verify_paystack_transfer"
# Paystack's final transfer statuses, as the ledger's
SETTLED_AS = {
    "success": S.COMPLETED,
    "failed": S.FAILED,
    "rejected": S.FAILED,
    "blocked": S.FAILED,
    "abandoned": S.FAILED,
    "reversed": S.REVERSED,
}


def new_reference() -> str:
    """Ours and Paystack's: 28 of a-z, 0-9 and '_' (Paystack takes 16 to 50)."""
    return "trf_" + secrets.token_hex(12)


def wallet(phone: str) -> str:
    """254712345678 -> 0712345678, the account number of an M-Pesa recipient (Paystack's sample)."""
    return "0" + phone[3:]


def record_transfer(
    merchant: Merchant,
    *,
    phone: str,
    amount: int,
    reason: str,
    api: str,
    source: str = "api",
    name: str | None = None,
) -> Payment:
    """Records a pending transfer of `amount` (minor units) to the M-Pesa wallet `phone`
    (254XXXXXXXXX) and enqueues its send job for after the caller's commit. Raises NotConfigured
    (no Paystack key) and ValueError (not a positive amount)."""
    paystack_for(merchant)  # NotConfigured before anything is recorded
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("a transfer's amount is a positive number of cents")
    payment = create_payment(
        source,
        f"transfer requested through the {api}",
        merchant_id=merchant.id,
        reference=new_reference(),
        rail=RAIL,
        kind=KIND,
        status=S.PENDING,
        amount=amount,
        currency="KES",
        phone=phone,
        description=reason[:255],
        api=api,
        attempts=0,
        meta={"cleared": 0, "recipient_name": (name or f"M-Pesa {phone}")[:100]},
    )
    send_later(payment.id)
    return payment


def request_transfer(merchant: Merchant, **fields) -> Payment:
    """record_transfer, committed (the send job goes out then)."""
    payment = record_transfer(merchant, **fields)
    db.session.commit()
    return payment


def send_later(payment_id: int, delay: float | None = None) -> None:
    """The send job, after commit (one waiting or running per transfer; a delayed one stands alone)."""
    enqueue(
        SEND_JOB,
        payment_id,
        queue="payouts",
        job_id=None if delay else f"transfer-send-{payment_id}",
        delay=delay,
        meta={"payment_id": payment_id},
    )


def verify_later(payment_id: int) -> None:
    enqueue(
        VERIFY_JOB,
        payment_id,
        queue="payouts",
        job_id=f"transfer-verify-{payment_id}",
        meta={"payment_id": payment_id},
    )


# -- sending -----------------------------------------------------------------------------------
def _fail(payment: Payment, why: str, code: str | None = None) -> None:
    transition(payment, S.FAILED, "api", why, current=S.PENDING, result_code=(code or "refused")[:16], result_desc=why)


def send(payment_id: int) -> str:
    """The send job: sends a pending transfer, or first verifies the attempt that may have
    reached Paystack. Transient failures raise, so the job is retried with backoff (and the
    retry verifies first where it must)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.kind != KIND or payment.status != S.PENDING:
        return "nothing to send"
    in_doubt = payment.attempts > payout_attempts.cleared(payment)
    try:
        client = paystack_for(db.session.get(Merchant, payment.merchant_id))
    except NotConfigured as exc:
        if in_doubt:
            raise  # it may be at Paystack: only Paystack can say, once the key is back
        _fail(payment, str(exc), "not_configured")
        db.session.commit()
        return "failed: Paystack is not set up"
    if in_doubt:
        outcome = _verify_attempt(payment, client)
        if outcome is not None:
            return outcome
    try:
        recipient = _recipient(payment, client)
    except PaystackError as exc:
        if exc.retryable:
            raise
        _fail(payment, f"Paystack refused the recipient: {exc.message}", exc.code)
        db.session.commit()
        return f"refused: {exc}"
    attempt = payment.attempts + 1
    meta = {**(payment.meta or {}), "recipient_code": recipient, "attempt_sent_at": time.time()}
    claimed = db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == S.PENDING, Payment.attempts == attempt - 1)
        .values({Payment.attempts: attempt, Payment.meta: meta, Payment.updated_at: utcnow()})
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()  # the attempt is on record before Paystack hears of it
    if not claimed:
        return "another worker is sending this transfer"
    db.session.refresh(payment)
    try:
        answer = client.transfer(
            from_subunits(payment.amount), recipient, payment.reference, reason=payment.description or None
        )
    except PaystackError as exc:
        if exc.duplicate_reference:  # an earlier attempt did reach it
            return _verify_attempt(payment, client) or "Paystack has no such transfer, yet refused it as a duplicate"
        payout_attempts.clear(payment, attempt, f"Paystack refused it: {exc.message}")
        if exc.retryable:
            db.session.commit()
            raise
        _fail(payment, f"Paystack refused the transfer: {exc.message}", exc.code)
        db.session.commit()
        return f"refused: {exc}"
    except PaystackUnavailable as exc:
        if not exc.maybe_sent:
            payout_attempts.clear(payment, attempt, f"Paystack unreachable: {exc}")
            db.session.commit()
        raise  # retried; where it may have been sent, the retry verifies first
    outcome = apply_transfer(payment, answer, "api")
    if outcome == "mismatch":
        log.error("transfer %s: Paystack answered another transfer: %s", payment.reference, answer)
    db.session.commit()
    return f"sent attempt {attempt}: {outcome}"


def _recipient(payment: Payment, client) -> str:
    code = (payment.meta or {}).get("recipient_code")
    if isinstance(code, str) and code:
        return code
    name = (payment.meta or {}).get("recipient_name") or f"M-Pesa {payment.phone}"
    recipient = client.create_recipient(name, wallet(payment.phone), metadata={"reference": payment.reference})
    return recipient.recipient_code


def _verify_attempt(payment: Payment, client) -> str | None:
    """Asks Paystack about the attempt that may have reached it: what became of it when Paystack
    knows it or the doubt stands (asked again later); None once it proved never to have arrived
    (cleared: the next attempt may go)."""
    try:
        answer = client.verify_transfer(payment.reference)
    except PaystackError as exc:
        if not exc.not_found:
            raise
        wait = payout_attempts.still_in_doubt(payment, "TRANSFER_IN_DOUBT_SECONDS")
        if wait:
            send_later(payment.id, delay=wait)
            db.session.commit()
            return f"Paystack has no transfer {payment.reference} yet: asking again in {wait:.0f}s"
        payout_attempts.clear(payment, payment.attempts, "Paystack has no such transfer")
        db.session.commit()
        return None
    outcome = apply_transfer(payment, answer, "query")
    db.session.commit()
    return f"Paystack has it: {outcome}"


# -- what Paystack says --------------------------------------------------------------------------
def _matches(payment: Payment, answer: Transfer) -> bool:
    try:
        same_money = to_subunits(answer.amount) == payment.amount and answer.currency.upper() == payment.currency
    except (TypeError, ValueError, ArithmeticError):
        return False
    return answer.reference == payment.reference and same_money


def _detail(payment: Payment, answer: Transfer, target: str | None) -> str:
    if target == S.COMPLETED:
        return f"Paystack paid {payment.phone} ({answer.transfer_code})"
    if target == S.REVERSED:
        why = answer.gateway_response or "reversed"
        return f"Paystack reversed the transfer: the money is back in the balance ({why})"
    if target == S.FAILED:
        return f"Paystack: the transfer {answer.status}: {answer.gateway_response or 'no reason given'}"
    if answer.status == "otp":
        return (
            "Paystack waits for the transfer's OTP: finalize it in the Paystack dashboard, "
            "or turn transfer OTPs off for automatic payouts"
        )
    return f"Paystack took the transfer ({answer.transfer_code}, {answer.status})"


def apply_transfer(payment: Payment, answer: Transfer, source: str) -> str:
    """Applies a transfer as Paystack tells it (its answer, verify, a signed webhook). Returns
    applied, duplicate, pending (not final yet), mismatch (another transfer, amount or currency)
    or rejected (contradicts a final state). The caller commits."""
    if not _matches(payment, answer):
        return "mismatch"
    code = answer.transfer_code[:100]
    target = SETTLED_AS.get(answer.status)
    current = payment.status
    if current == S.PENDING:  # the answer, or a webhook that beat it
        moved = transition(
            payment, S.PROCESSING, source, _detail(payment, answer, None), current=current, provider_reference=code
        )
        current = S.PROCESSING if moved else current_status(payment.id)
    if target is None:
        return "pending"
    if current == target:
        return "duplicate"
    if current not in S.ALLOWED_FROM[target]:
        log.error("transfer %s is %s, but Paystack says %s", payment.reference, current, answer.status)
        return "rejected"
    fields = {"result_code": answer.status[:16], "result_desc": answer.gateway_response or answer.status}
    if target == S.COMPLETED:
        fields["receipt"] = code[:32]
    moved = transition(payment, target, source, _detail(payment, answer, target), current=current, **fields)
    return "applied" if moved else "rejected"


def verify_job(payment_id: int) -> str:
    """The verify job: asks Paystack about a transfer it took and applies the answer."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.kind != KIND or payment.status != S.PROCESSING:
        return "nothing to ask"
    client = paystack_for(db.session.get(Merchant, payment.merchant_id))
    payment.last_queried_at = utcnow()
    db.session.commit()
    outcome = apply_transfer(payment, client.verify_transfer(payment.reference), "query")
    db.session.commit()
    return outcome


@events.on("transfer.success", "transfer.failed", "transfer.reversed")
def transfer_event(payment: Payment, data: dict) -> inbox.Verdict:
    if payment.rail != RAIL or payment.kind != KIND:
        return inbox.Verdict("rejected", f"{payment.reference} is not a Paystack transfer")
    try:
        answer = transfer_of(data)
    except PaystackUnavailable:
        verify_later(payment.id)
        return inbox.Verdict("rejected", "the transfer is unreadable; asking Paystack (verify)")
    outcome = apply_transfer(payment, answer, "webhook")
    if outcome == "applied":
        return inbox.Verdict("applied", f"transfer is now {payment.status}")
    if outcome == "duplicate":
        return inbox.Verdict("duplicate", "already applied")
    if outcome == "mismatch":
        verify_later(payment.id)
        return inbox.Verdict("rejected", "not this transfer's reference, amount or currency: asking Paystack (verify)")
    if outcome == "pending":
        return inbox.Verdict("applied", f"transfer is {payment.status}; Paystack says {answer.status}")
    return inbox.Verdict("rejected", f"transfer is {payment.status}; the event changes nothing")


@step("paystack_transfers")
def sweep_transfers(now: datetime) -> int:
    """Transfers Paystack has been silent about: still pending (the send job was lost: sending
    again is safe, it verifies first) or processing (verified). Each is looked at from
    SWEEP_QUERY_AFTER after its creation, at most once per SWEEP_QUERY_EVERY."""
    cfg = current_app.config
    after, every = float(cfg["SWEEP_QUERY_AFTER"]), float(cfg["SWEEP_QUERY_EVERY"])
    rows = db.session.scalars(
        select(Payment)
        .where(
            Payment.rail == RAIL,
            Payment.kind == KIND,
            Payment.status.in_((S.PENDING, S.PROCESSING)),
            Payment.created_at < now - timedelta(seconds=after),
            or_(Payment.last_queried_at.is_(None), Payment.last_queried_at < now - timedelta(seconds=every)),
        )
        .order_by(Payment.created_at)
        .limit(BATCH)
    ).all()

    def again(payment: Payment) -> None:
        payment.last_queried_at = now
        (send_later if payment.status == S.PENDING else verify_later)(payment.id)

    return each_row(rows, again, record_failure)
