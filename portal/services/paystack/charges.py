"""The Paystack rail's payments: hosted checkouts (initialize) and M-Pesa charges, and what
Paystack says of them (verify, the charge.success webhook) applied to the ledger.

A payment is recorded pending and committed before Paystack is asked (its reference is ours,
and Paystack's: a webhook always finds it); Paystack taking it moves it to processing.

Guarantees:
- a success is applied only with the amount and currency the payment asked for;
- a success that would move a payment out of a final state (cancelled, timeout) is applied only
  as verify tells it (a webhook makes us verify), and is flagged in the timeline;
- a checkout is never failed: its customer may try again on the same page, so a failed attempt
  leaves it timeout (shown as failed by the bookings API), which a later success still settles;
  an M-Pesa charge's failure is final at Paystack, and here;
- a request whose answer was lost (maybe sent) leaves the payment timeout, and the sweeper
  verifies it like every silent payment: Paystack sends no webhook for a failure.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.paystack import (
    LIVE_URL,
    PaystackClient,
    PaystackError,
    PaystackUnavailable,
    Transaction,
    from_subunits,
    to_subunits,
)
from portal.queueing import enqueue
from portal.services import errors
from portal.services.mpesa.sweeps import record_failure
from portal.services.paystack import paystack_for
from portal.services.sweeper import BATCH, each_row, step
from portal.services.transitions import create_payment, transition
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)
RAIL = "paystack"
CHECKOUT, CHARGE = "checkout", "charge"
PROVIDER = "Paystack"
VERIFY_JOB = "portal.jobs.verify_paystack_payment"
# Paystack's test environment forces these (the bookings document's "Test Mode")
TEST_PHONE, TEST_EMAIL = "254708374176", "test@example.com"
TEST_AMOUNTS = tuple(range(100, 1001, 100))
VERIFIABLE = (S.PENDING, S.PROCESSING, S.TIMEOUT, S.CANCELLED)


@dataclass(frozen=True)
class Started:
    payment: Payment
    authorization_url: str | None = None
    access_code: str | None = None
    display_text: str | None = None


class TestModeRefused(ValueError):
    """Paystack's test environment takes only some amounts."""


def against_paystack_test(client: PaystackClient) -> bool:
    """A test key against Paystack itself (not the simulator): its test-mode rules apply."""
    return client.secret_key.startswith("sk_test_") and client.base_url == LIVE_URL.rstrip("/")


def paystack_test_rules(client: PaystackClient, amount: int, phone: str | None, email: str) -> tuple[str | None, str]:
    if not against_paystack_test(client):
        return phone, email
    if amount % 100 or amount // 100 not in TEST_AMOUNTS:
        raise TestModeRefused("In Paystack's test mode the amount must be one of 100, 200, ... 1000 KES")
    return (TEST_PHONE if phone else None), TEST_EMAIL


def _begin(
    merchant: Merchant,
    kind: str,
    what: str,
    *,
    source: str,
    api: str,
    amount: int,
    email: str,
    phone: str | None,
    meta: dict | None,
    **fields,
) -> tuple[PaystackClient, Payment]:
    """The merchant's client and the payment, recorded pending and committed before Paystack is
    asked (a webhook can always find it). Paystack's test rules apply to what is recorded: send
    Paystack the payment's email and phone, not the caller's."""
    client = paystack_for(merchant)
    phone, email = paystack_test_rules(client, amount, phone, email)
    payment = create_payment(
        source,
        f"{what} requested through the {api} API",
        merchant_id=merchant.id,
        rail=RAIL,
        kind=kind,
        status=S.PENDING,
        currency="KES",
        api=api,
        amount=amount,
        email=email,
        phone=phone,
        meta=meta or {},
        **fields,
    )
    db.session.commit()
    return client, payment


def _refused(payment: Payment, source: str, exc: Exception) -> errors.PaymentError:
    """Fails a payment Paystack refused or that never reached it; the error to raise. A request
    that may have reached Paystack leaves the payment timeout for the sweeper to verify."""
    if isinstance(exc, PaystackUnavailable) and exc.maybe_sent:
        transition(payment, S.TIMEOUT, source, f"Paystack's answer was lost: {exc}; verifying later", current=S.PENDING)
        db.session.commit()
        return errors.OutcomeUnknown(payment, PROVIDER)
    if isinstance(exc, PaystackError):
        code = (exc.code or str(exc.status))[:16]
        detail = f"Paystack refused the request: {exc.message}"
        transition(payment, S.FAILED, source, detail, current=S.PENDING, result_code=code, result_desc=exc.message)
        db.session.commit()
        refusal = (
            errors.ProviderUnavailable(exc.message) if exc.retryable else errors.ProviderRejected(code, exc.message)
        )
    else:
        detail = f"Paystack unreachable: {exc}"
        transition(payment, S.FAILED, source, detail, current=S.PENDING, result_desc="Paystack unreachable")
        db.session.commit()
        refusal = errors.ProviderUnavailable(str(exc))
    refusal.provider = PROVIDER
    return refusal


def _ask(payment: Payment, source: str, call):
    """`call()` to Paystack for a pending payment; its refusals fail the payment (see _refused)."""
    try:
        return call()
    except (PaystackError, PaystackUnavailable) as exc:
        raise _refused(payment, source, exc) from exc
    except Exception as exc:  # a bug or an outage of ours mid-request: never leave it pending unexplained
        db.session.rollback()
        log.exception("Paystack request for payment %s failed unexpectedly", payment.id)
        transition(
            payment,
            S.TIMEOUT,
            source,
            f"interrupted by an internal error ({exc.__class__.__name__})",
            current=S.PENDING,
        )
        db.session.commit()
        raise errors.OutcomeUnknown(payment, PROVIDER) from exc


def start_checkout(
    merchant: Merchant,
    *,
    api: str,
    reference: str,
    amount: int,
    email: str,
    callback_url: str | None = None,
    meta: dict | None = None,
    user_ref: str | None = None,
    phone: str | None = None,
    retry_of_id: int | None = None,
    source: str = "api",
) -> Started:
    """A Paystack hosted checkout for `amount` (minor units): send the customer to its
    `authorization_url`. Raises NotConfigured, TestModeRefused, ProviderRejected,
    ProviderUnavailable (the payment is failed) or OutcomeUnknown."""
    client, payment = _begin(
        merchant,
        CHECKOUT,
        "Paystack checkout",
        source=source,
        api=api,
        amount=amount,
        email=email,
        phone=phone,
        meta=meta,
        reference=reference,
        user_ref=user_ref,
        retry_of_id=retry_of_id,
    )
    paystack_meta = {"reference": reference, "api": api}
    if meta and "metadata" in meta:
        paystack_meta["metadata"] = meta["metadata"]
    checkout = _ask(
        payment,
        source,
        lambda: client.initialize(
            payment.email, from_subunits(amount), reference=reference, callback_url=callback_url, metadata=paystack_meta
        ),
    )
    transition(
        payment,
        S.PROCESSING,
        source,
        "Paystack checkout created: waiting for the customer",
        current=S.PENDING,
        provider_reference=checkout.reference,
        meta={**(meta or {}), "access_code": checkout.access_code, "authorization_url": checkout.authorization_url},
    )
    db.session.commit()
    return Started(payment, checkout.authorization_url, checkout.access_code)


def start_mpesa_charge(
    merchant: Merchant,
    *,
    api: str,
    reference: str,
    amount: int,
    email: str,
    phone: str,
    meta: dict | None = None,
    user_ref: str | None = None,
    retry_of_id: int | None = None,
    source: str = "api",
) -> Started:
    """An M-Pesa prompt through Paystack for `amount` (minor units, whole shillings) on `phone`
    (2547XXXXXXXX). Raises what start_checkout raises."""
    if amount <= 0 or amount % 100:
        raise ValueError("M-Pesa amounts are whole shillings")
    client, payment = _begin(
        merchant,
        CHARGE,
        "M-Pesa charge through Paystack",
        source=source,
        api=api,
        amount=amount,
        email=email,
        phone=phone,
        meta=meta,
        reference=reference,
        user_ref=user_ref,
        retry_of_id=retry_of_id,
    )
    charge = _ask(
        payment,
        source,
        lambda: client.charge_mpesa(
            payment.email, amount // 100, payment.phone, reference=reference, metadata={"reference": reference}
        ),
    )
    if charge.status == "failed":
        reason = charge.message or "the charge failed"
        transition(
            payment,
            S.FAILED,
            source,
            f"Paystack: {reason}",
            current=S.PENDING,
            result_desc=reason,
            provider_reference=charge.reference,
        )
        db.session.commit()
        if "lock subscriber" in reason:  # M-Pesa's words: a prompt is already open on the phone
            refusal = errors.SubscriberBusy(reason)
        else:
            refusal = errors.ProviderRejected("charge_failed", reason)
        refusal.provider = PROVIDER
        raise refusal
    transition(
        payment,
        S.PROCESSING,
        source,
        charge.display_text or "Paystack sent the M-Pesa prompt",
        current=S.PENDING,
        provider_reference=charge.reference,
        customer_message=(charge.display_text or "")[:255] or None,
    )
    db.session.commit()
    if charge.transaction is not None:  # paid at once
        apply_transaction(payment, charge.transaction, source)
        db.session.commit()
    return Started(payment, display_text=charge.display_text)


# -- what Paystack says ------------------------------------------------------------------------
def amount_matches(payment: Payment, amount: Decimal | int, currency: str | None) -> bool:
    try:
        return to_subunits(amount if isinstance(amount, int) else Decimal(amount)) == payment.amount and (
            (currency or "").upper() == payment.currency
        )
    except (TypeError, ValueError, ArithmeticError):
        return False


def apply_transaction(payment: Payment, tx: Transaction, source: str, *, confirmed: bool = True) -> str:
    """Applies a transaction as Paystack tells it (verify: `confirmed`; a signed webhook: not
    enough to move a final payment). Returns applied, duplicate, pending, mismatch, unconfirmed or
    rejected. The caller commits."""
    if tx.reference != payment.reference:
        return "mismatch"
    current = payment.status
    if tx.status == "success":
        if not amount_matches(payment, tx.amount, tx.currency):
            return "mismatch"
        if current == S.COMPLETED:
            return "duplicate"
        if current in (S.TIMEOUT, S.CANCELLED) and not confirmed:
            return "unconfirmed"
        if current == S.PENDING:  # the answer to our request was lost, yet Paystack has it
            transition(payment, S.PROCESSING, source, "Paystack has the payment", current=current)
            current = S.PROCESSING
        detail = "paid through Paystack"
        if current == S.CANCELLED:
            detail = "paid after it was cancelled: flagged for refund"
        elif current == S.TIMEOUT:
            detail = "paid after it timed out (late truth)"
        moved = transition(
            payment,
            S.COMPLETED,
            source,
            detail,
            current=current,
            receipt=(tx.receipt_number or str(tx.id))[:32],
            result_code="0",
            result_desc=tx.gateway_response or "Approved",
            meta={**(payment.meta or {}), "channel": tx.channel, "paid_at": tx.paid_at, "was": current},
        )
        return "applied" if moved else "rejected"
    if tx.status == "reversed" and current == S.COMPLETED:
        return "applied" if transition(payment, S.REVERSED, source, "Paystack reversed the payment") else "rejected"
    if tx.status == "failed" and payment.kind == CHARGE and current in (S.PENDING, S.PROCESSING, S.TIMEOUT):
        reason = tx.gateway_response or tx.message or "the charge failed"
        moved = transition(payment, S.FAILED, source, f"Paystack: {reason}", current=current, result_desc=reason)
        return "applied" if moved else "rejected"
    if tx.status == "failed" and payment.kind == CHECKOUT and current in (S.PENDING, S.PROCESSING):
        # not failed: the same checkout may still be paid (another card), and a success must land
        reason = tx.gateway_response or tx.message or "the payment failed"
        detail = f"Paystack: {reason}; the checkout can still be paid until it expires"
        moved = transition(payment, S.TIMEOUT, source, detail, current=current, result_desc=reason)
        return "applied" if moved else "rejected"
    if tx.status == "abandoned" and payment.kind == CHARGE and current in (S.PENDING, S.PROCESSING):
        detail = "the customer did not answer the prompt (Paystack: abandoned)"
        return "applied" if transition(payment, S.TIMEOUT, source, detail, current=current) else "rejected"
    if tx.status in ("success", "failed", "reversed", "abandoned") and payment.is_final:
        return "duplicate" if _same(current, tx.status) else "rejected"
    return "pending"


def _same(status: str, paystack_status: str) -> bool:
    return {"success": S.COMPLETED, "failed": S.FAILED, "reversed": S.REVERSED}.get(paystack_status) == status


def verify_now(payment: Payment, source: str = "query") -> str:
    """Asks Paystack (verify) about the payment, applies the answer and commits. Raises
    NotConfigured, PaystackError and PaystackUnavailable."""
    client = paystack_for(db.session.get(Merchant, payment.merchant_id))
    try:
        tx = client.verify(payment.reference)
    except PaystackError as exc:
        if exc.not_found and payment.status in (S.PENDING, S.TIMEOUT) and payment.provider_reference is None:
            # our request never reached Paystack: nobody can pay it
            reason = "Paystack has no such transaction: the request never reached it"
            transition(payment, S.FAILED, source, reason, result_desc=reason)
            db.session.commit()
            return "applied"
        raise
    payment.last_queried_at = utcnow()
    outcome = apply_transaction(payment, tx, source, confirmed=True)
    db.session.commit()
    return outcome


def verify_later(payment_id: int) -> None:
    """The verify job, after commit (one waiting or running per payment)."""
    enqueue(VERIFY_JOB, payment_id, job_id=f"paystack-verify-{payment_id}", meta={"payment_id": payment_id})


def verify_job(payment_id: int) -> str:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.rail != RAIL or payment.kind not in (CHECKOUT, CHARGE):
        return "not a Paystack payment"
    if payment.status not in VERIFIABLE:
        return "nothing to ask"
    return verify_now(payment)


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(current_app.config[name]))


@step("paystack_silent")
def verify_silent(now: datetime) -> int:
    """Paystack payments that have heard nothing for a while: verified (Paystack sends no
    webhook for a failed or abandoned charge, and a webhook can be lost). Each is asked at most
    once per SWEEP_QUERY_AFTER; a cancelled or timed-out one for a day, in case it was paid."""
    every = _seconds("SWEEP_QUERY_AFTER")
    rows = db.session.scalars(
        select(Payment)
        .where(
            Payment.rail == RAIL,
            Payment.kind.in_((CHECKOUT, CHARGE)),
            Payment.status.in_(VERIFIABLE),
            Payment.created_at > now - timedelta(days=1),
            Payment.updated_at < now - every,
            or_(Payment.last_queried_at.is_(None), Payment.last_queried_at < now - every),
        )
        .order_by(Payment.last_queried_at.is_not(None), Payment.last_queried_at, Payment.id)
        .limit(BATCH)
    ).all()

    return verify_each(rows, now)


def verify_each(payments: list[Payment], now: datetime) -> int:
    """The sweeper's verify of each payment, each marked asked at `now` first (a payment Paystack
    fails on waits its turn); one that fails records why on its row and the others go on."""

    def ask(payment: Payment):
        payment.last_queried_at = now
        db.session.commit()
        return verify_now(payment, "sweeper")

    return each_row(payments, ask, record_failure)
