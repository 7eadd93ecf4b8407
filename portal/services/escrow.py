"""Escrow (the bookings document): a booking's paid payment is held until the merchant releases it
to the teacher, or refunds it. The states are the model's (models/escrow.py).

Guarantees:
- every completed bookings payment is held once (one Escrow per payment): a job enqueued by its
  completion holds it, and a sweeper step holds any a lost job left unheld;
- a payment paid after it was cancelled, or a second paid payment for a booking already held or
  released, is held with `refund_due` and the reason; it is never released, only refunded;
- a release pays at most what is held, once: one compare-and-set held|failed → releasing, which
  names the payout, in the transaction that records the payout; of two concurrent releases one
  records its payout and the other is refused and leaves nothing behind;
- the escrow follows its payout in the payout's own transactions: completed → released; failed,
  or reversed (the money came back) → failed, released again when the merchant says so;
- a refund is asked of Paystack (the held payment in full) once the escrow moved held|failed →
  refunded; refund.processed then moves the payment completed → reversed.

Errors are EscrowError subclasses whose message is meant for the merchant; NotConfigured when the
chosen payout rail (or Paystack, for a refund) is not set up.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.models.escrow import Escrow, EscrowStatus
from portal.providers.paystack import PaystackError, PaystackUnavailable
from portal.queueing import enqueue
from portal.services import inbox
from portal.services.mpesa import b2c
from portal.services.mpesa.client import daraja_initiator_for
from portal.services.mpesa.sweeps import record_failure
from portal.services.paystack import charges, events, paystack_for, transfers
from portal.services.sweeper import BATCH, each_row, step
from portal.services.transitions import Transition, subscribe, transition
from portal.timeutil import utcnow

E, S = EscrowStatus, PaymentStatus
log = logging.getLogger(__name__)
API = "bookings"  # the payments held, and the payouts that release them
HELD_KINDS = (charges.CHECKOUT, charges.CHARGE)
PAYOUT_KINDS = (transfers.KIND, "b2c")
PAYSTACK, MPESA = "paystack", "mpesa"
RAILS = (PAYSTACK, MPESA)
SETTINGS_KEY = "escrow_payout_rail"
RELEASABLE = (E.HELD, E.FAILED)
REFUNDABLE = (E.HELD, E.FAILED)
STILL_HOLDING = (E.HELD, E.RELEASING, E.RELEASED, E.FAILED)  # a booking counted as paid
HOLD_JOB = "portal.jobs.hold_escrow"


class EscrowError(Exception):
    """The message is meant for the merchant."""


class NothingHeld(EscrowError):
    """No held payment for that booking (or that escrow) of this merchant."""


class AlreadyReleased(EscrowError):
    """The escrow is being released or was released."""


class RefundDue(EscrowError):
    """What is held for the booking must be refunded, not released."""


class OverHeld(EscrowError):
    """More than is held was asked for."""


class BadAmount(EscrowError):
    """An amount the payout rail cannot pay."""


class NotRefundable(EscrowError):
    """The escrow is being released, was released or was refunded."""


class RefundRefused(EscrowError):
    """Paystack refused the refund; nothing was refunded."""


class RefundUnavailable(EscrowError):
    """Paystack could not be reached; nothing was refunded."""


@dataclass(frozen=True)
class Release:
    """A release under way: `amount` goes to `phone` by `rail`, `kept` stays with the merchant."""

    escrow_id: int
    booking_id: str
    amount: int  # minor units
    kept: int  # minor units
    phone: str
    rail: str
    payout_reference: str
    requested_at: datetime  # naive UTC


def payout_rail(merchant: Merchant) -> str:
    """The merchant's choice (settings["escrow_payout_rail"]); else Paystack when it has a key, else M-Pesa."""
    chosen = (merchant.settings or {}).get(SETTINGS_KEY)
    if chosen in RAILS:
        return chosen
    return PAYSTACK if merchant.has_paystack else MPESA


def save_payout_rail(merchant: Merchant, rail: str | None) -> None:
    """Stores the choice (None: the default) and commits; other settings are kept."""
    if rail is not None and rail not in RAILS:
        raise ValueError(f"a payout rail is one of {RAILS}")
    settings = {k: v for k, v in (merchant.settings or {}).items() if k != SETTINGS_KEY}
    merchant.settings = settings if rail is None else {**settings, SETTINGS_KEY: rail}
    db.session.commit()


def booking_of(payment: Payment) -> str:
    """The booking a payment pays for (meta["bookingId"]); its reference when it names none."""
    booking = (payment.meta or {}).get("bookingId")
    return str(booking)[:100] if isinstance(booking, (str, int)) and str(booking) else payment.reference


# -- holding -------------------------------------------------------------------------------------
def holdable(payment: Payment) -> bool:
    return payment.api == API and payment.rail == charges.RAIL and payment.kind in HELD_KINDS


def hold_later(payment_id: int) -> None:
    enqueue(HOLD_JOB, payment_id, queue="payments", job_id=f"escrow-hold-{payment_id}", meta={"payment_id": payment_id})


def _lock_booking(merchant_id: int, booking_id: str) -> None:
    """PostgreSQL: holds of one booking wait for each other until commit (SQLite writes one at a time)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"escrow:{merchant_id}:{booking_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def hold(payment_id: int) -> str:
    """The hold job: holds a completed bookings payment, once however often it runs."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or not holdable(payment):
        return "not a bookings payment"
    if payment.status != S.COMPLETED:
        return f"payment is {payment.status}: nothing to hold"
    booking = booking_of(payment)
    _lock_booking(payment.merchant_id, booking)
    if db.session.scalar(select(Escrow.id).where(Escrow.payment_id == payment.id)) is not None:
        db.session.rollback()
        return "already held"
    reason = _refund_reason(payment, booking)
    escrow = Escrow(
        merchant_id=payment.merchant_id,
        payment_id=payment.id,
        booking_id=booking,
        amount=payment.amount,
        currency=payment.currency,
        status=E.HELD,
        refund_due=reason is not None,
        refund_reason=reason,
        meta={},
    )
    db.session.add(escrow)
    try:
        db.session.commit()
    except IntegrityError:  # held by a concurrent job
        db.session.rollback()
        return "already held"
    return f"held for booking {booking}" + (f", refund due: {reason}" if reason else "")


def _refund_reason(payment: Payment, booking: str) -> str | None:
    if (payment.meta or {}).get("was") == S.CANCELLED:
        return "Paid after the payment was cancelled: refund it"
    earlier = db.session.scalar(
        select(Payment.reference)
        .join(Escrow, Escrow.payment_id == Payment.id)
        .where(
            Escrow.merchant_id == payment.merchant_id,
            Escrow.booking_id == booking,
            Escrow.status.in_(STILL_HOLDING),
            Escrow.refund_due.is_(False),
        )
        .limit(1)
    )
    if earlier is not None:
        return f"Booking {booking} was already paid by payment {earlier}: refund this second payment"
    return None


@step("escrow_unheld")
def hold_unheld(now: datetime) -> int:
    """Completed bookings payments with no escrow, SWEEP_QUERY_AFTER after their completion (their
    hold job was lost): their hold job again."""
    grace = timedelta(seconds=float(current_app.config["SWEEP_QUERY_AFTER"]))
    ids = db.session.scalars(
        select(Payment.id)
        .outerjoin(Escrow, Escrow.payment_id == Payment.id)
        .where(
            Payment.api == API,
            Payment.rail == charges.RAIL,
            Payment.kind.in_(HELD_KINDS),
            Payment.status == S.COMPLETED,
            Payment.completed_at < now - grace,
            Escrow.id.is_(None),
        )
        .order_by(Payment.id)
        .limit(BATCH)
    ).all()
    return each_row(ids, hold_later, record_failure)


# -- releasing ------------------------------------------------------------------------------------
def release(merchant: Merchant, booking_id: str, teacher_phone: str, amount_minor: int, source: str) -> Release:
    """Pays `amount_minor` of what is held for the booking to `teacher_phone` (254XXXXXXXXX) by the
    merchant's payout rail; the rest stays with the merchant. Raises NothingHeld, AlreadyReleased,
    RefundDue, OverHeld, BadAmount or NotConfigured."""
    return _release(merchant, _releasable(merchant.id, booking_id), teacher_phone, amount_minor, source)


def release_escrow(merchant: Merchant, escrow_id: int, teacher_phone: str, amount_minor: int, source: str) -> Release:
    """release(), of one escrow named by its id (the portal)."""
    escrow = Escrow.get_for_merchant(merchant.id, id=escrow_id)
    if escrow is None:
        raise NothingHeld("No such escrow")
    return _release(merchant, escrow, teacher_phone, amount_minor, source)


def _releasable(merchant_id: int, booking_id: str) -> Escrow:
    """The booking's escrow a release would pay from, or the error saying why there is none."""
    rows = Escrow.for_merchant(merchant_id).filter(Escrow.booking_id == booking_id).order_by(Escrow.id).all()
    for row in rows:
        if row.status in RELEASABLE and not row.refund_due:
            return row
    for row in rows:
        if row.status in (E.RELEASING, E.RELEASED) and not row.refund_due:
            raise _already(row.status, booking_id)
    if any(row.status in RELEASABLE for row in rows):
        raise RefundDue(f"The payment held for booking {booking_id} is due for refund, not release")
    raise NothingHeld(f"No held payment for booking {booking_id}")


def _already(status: str, booking_id: str) -> AlreadyReleased:
    if status == E.RELEASING:
        return AlreadyReleased(f"The escrow of booking {booking_id} is already being released")
    return AlreadyReleased(f"The escrow of booking {booking_id} was already released")


def _check(escrow: Escrow, rail: str, amount: int) -> None:
    if escrow.status in (E.RELEASING, E.RELEASED):
        raise _already(escrow.status, escrow.booking_id)
    if escrow.status not in RELEASABLE:
        raise NothingHeld(f"No held payment for booking {escrow.booking_id}")
    if escrow.refund_due:
        raise RefundDue(f"The payment held for booking {escrow.booking_id} is due for refund, not release")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise BadAmount("The amount must be more than zero")
    if amount > escrow.amount:
        raise OverHeld(f"Amount is more than the {_kes(escrow.amount)} held for booking {escrow.booking_id}")
    if rail == MPESA and (amount % 100 or not b2c.MINIMUM <= amount // 100 <= b2c.MAXIMUM):
        raise BadAmount(f"M-Pesa pays out whole shillings from {b2c.MINIMUM} to {b2c.MAXIMUM:,} KES")


def _kes(minor: int) -> str:
    whole, cents = divmod(minor, 100)
    return f"KES {whole:,}" + (f".{cents:02d}" if cents else "")


def _record_payout(merchant: Merchant, rail: str, escrow: Escrow, phone: str, amount: int, source: str) -> Payment:
    why = f"Escrow release for booking {escrow.booking_id}"[:100]
    if rail == MPESA:
        return b2c.record_payout(
            merchant, phone=phone, amount=amount, remarks=why, occasion=None, api=API, source=source
        )
    return transfers.record_transfer(merchant, phone=phone, amount=amount, reason=why, api=API, source=source)


def check_release(merchant: Merchant, escrow: Escrow, amount_minor: int) -> str:
    """The rail a release of `amount_minor` from `escrow` would pay by, or what release() would
    raise (but AlreadyReleased from a concurrent release), before anything is recorded."""
    rail = payout_rail(merchant)
    _check(escrow, rail, amount_minor)
    if rail == MPESA:
        daraja_initiator_for(merchant)
    else:
        paystack_for(merchant)
    return rail


def _release(merchant: Merchant, escrow: Escrow, phone: str, amount: int, source: str) -> Release:
    rail = check_release(merchant, escrow, amount)
    escrow_id, booking, held = escrow.id, escrow.booking_id, escrow.amount
    payout = _record_payout(merchant, rail, escrow, phone, amount, source)
    now = utcnow()
    claimed = db.session.execute(
        update(Escrow)
        .where(
            Escrow.id == escrow_id,
            Escrow.status.in_(RELEASABLE),
            Escrow.refund_due.is_(False),
            Escrow.amount >= amount,
        )
        .values(
            status=E.RELEASING,
            attempts=Escrow.attempts + 1,
            payee_phone=phone,
            released_amount=amount,
            rail=rail,
            payout_id=payout.id,
            failure=None,
            released_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:  # another release won: its payout stands, this one is dropped with its job
        db.session.rollback()
        raise _already(db.session.scalar(select(Escrow.status).where(Escrow.id == escrow_id)), booking)
    db.session.commit()
    return Release(escrow_id, booking, amount, held - amount, phone, rail, payout.reference, now)


# -- following the payments ------------------------------------------------------------------------
def _move(where, to: str, **values) -> int:
    """One compare-and-set of the escrows `where` selects; the rows moved."""
    statement = update(Escrow).where(*where).values(status=to, updated_at=utcnow(), **values)
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _follow(t: Transition) -> None:
    """In the transaction of every transition: holds what completes, and moves the escrows whose
    held payment or payout just settled."""
    if t.api != API:
        return
    if t.kind in HELD_KINDS:
        if t.to_status == S.COMPLETED:
            hold_later(t.payment_id)
        elif t.to_status == S.REVERSED:  # refunded, whoever asked for it
            _move((Escrow.payment_id == t.payment_id, Escrow.status.in_(REFUNDABLE)), E.REFUNDED, refunded_at=t.at)
        return
    if t.kind not in PAYOUT_KINDS or t.to_status not in (S.COMPLETED, S.FAILED, S.REVERSED):
        return
    mine = (Escrow.merchant_id == t.merchant_id, Escrow.payout_id == t.payment_id)
    if t.to_status == S.COMPLETED:
        _move((*mine, Escrow.status == E.RELEASING), E.RELEASED, released_at=t.at, failure=None)
    elif t.to_status == S.FAILED:
        _move((*mine, Escrow.status == E.RELEASING), E.FAILED, failure=(t.detail or "the payout failed")[:1000])
    else:
        why = "the payout was reversed: the money is back with the merchant"
        _move((*mine, Escrow.status.in_((E.RELEASING, E.RELEASED))), E.FAILED, failure=why, released_at=None)


subscribe(_follow)


# -- refunding -------------------------------------------------------------------------------------
def refund(merchant: Merchant, escrow_id: int, source: str = "portal") -> Escrow:
    """Refunds the held payment in full through Paystack (held|failed → refunded first). Raises
    NothingHeld, NotRefundable, NotConfigured, RefundRefused or RefundUnavailable (both leave
    the escrow as it was)."""
    escrow = Escrow.get_for_merchant(merchant.id, id=escrow_id)
    if escrow is None:
        raise NothingHeld("No such escrow")
    if escrow.status not in REFUNDABLE:
        raise NotRefundable(f"The escrow of booking {escrow.booking_id} is {escrow.status}: it cannot be refunded")
    client = paystack_for(merchant)
    before, reference = escrow.status, escrow.payment.reference
    mine = (Escrow.id == escrow.id,)
    if not _move((*mine, Escrow.status == before), E.REFUNDED, refunded_at=utcnow(), failure=None):
        db.session.rollback()
        raise NotRefundable(f"The escrow of booking {escrow.booking_id} changed meanwhile: look again")
    db.session.commit()  # claimed before Paystack hears of it: a release cannot start meanwhile
    note = f"Escrow refund of booking {escrow.booking_id} ({source})"[:200]
    try:
        client.refund(reference, merchant_note=note)
    except (PaystackError, PaystackUnavailable) as exc:
        if isinstance(exc, PaystackUnavailable) and exc.maybe_sent:
            why = f"Paystack's answer was lost ({exc}); the refund is confirmed when Paystack reports it"
            db.session.execute(update(Escrow).where(*mine).values(failure=why[:1000]))
            db.session.commit()
            return db.session.get(Escrow, escrow.id)
        refused = f"Paystack refused the refund: {exc.message}" if isinstance(exc, PaystackError) else None
        why = refused or f"Paystack could not be reached: {exc}"
        _move((*mine, Escrow.status == E.REFUNDED), before, refunded_at=None, failure=why[:1000])
        db.session.commit()
        raise (RefundRefused if refused else RefundUnavailable)(why) from exc
    return db.session.get(Escrow, escrow.id)


def _refunded_amount(data: dict) -> int | None:
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, str)):
        return None
    try:
        return int(amount)
    except ValueError:
        return None


@step("escrow_refunds")
def confirm_refunds(now: datetime) -> int:
    """Refunded escrows whose payment Paystack has not yet been heard to reverse: the payment is
    verified (at most once per SWEEP_QUERY_AFTER, for a week), and a transaction Paystack shows
    `reversed` reverses it (charges.apply_transaction), so a lost refund.processed webhook is made
    up for. Until then the escrow stays refunded with its note."""
    every = timedelta(seconds=float(current_app.config["SWEEP_QUERY_AFTER"]))
    rows = db.session.scalars(
        select(Payment)
        .join(Escrow, Escrow.payment_id == Payment.id)
        .where(
            Escrow.status == E.REFUNDED,
            Escrow.refunded_at < now - every,
            Escrow.refunded_at > now - timedelta(days=7),
            Payment.status == S.COMPLETED,
            or_(Payment.last_queried_at.is_(None), Payment.last_queried_at < now - every),
        )
        .order_by(Payment.last_queried_at.is_not(None), Payment.last_queried_at, Payment.id)
        .limit(BATCH)
    ).all()

    return charges.verify_each(rows, now)


@events.on("refund.pending", "refund.processing", "refund.processed", "refund.failed", "refund.needs-attention")
def refund_event(payment: Payment, data: dict) -> inbox.Verdict:
    """Paystack's word on a refund of a held payment: processed in full reverses the payment (the
    escrow follows); failed puts a refunded escrow back to failed, to be refunded or released."""
    if not holdable(payment):
        return inbox.Verdict("rejected", f"{payment.reference} is not a bookings payment")
    status = data.get("status")
    if status == "processed":
        if _refunded_amount(data) != payment.amount:
            return inbox.Verdict("rejected", "a partial refund: the payment stays completed")
        if payment.status == S.REVERSED:
            return inbox.Verdict("duplicate", "already refunded")
        moved = transition(payment, S.REVERSED, "webhook", "Paystack refunded the payment", current=payment.status)
        return inbox.Verdict("applied" if moved else "rejected", f"payment is {payment.status}")
    if status in ("failed", "needs-attention"):
        why = f"Paystack could not refund the payment ({status}): refund it again, or release it"
        where = (Escrow.payment_id == payment.id, Escrow.status == E.REFUNDED)
        if payment.status == S.COMPLETED and _move(where, E.FAILED, refunded_at=None, failure=why):
            return inbox.Verdict("applied", "the escrow is failed again: the refund did not go through")
        return inbox.Verdict("duplicate", "nothing refunded to undo")
    return inbox.Verdict("applied", f"noted: the refund is {str(status)[:32]}")
