"""Bookings payments (the tutoring platform's document): a lesson booking paid through
Paystack, by its hosted checkout or an M-Pesa prompt, then held in escrow (services/escrow.py).

A payment remembers its booking (`meta["bookingId"]`), the caller's id of the payer
(`user_ref`: metadata.user_id) and its metadata. A retry is a new payment linked to the one it
retries (`retry_of_id`, unique: a payment is retried once) and counts its chain
(`meta["retryCount"]`). Cancelling moves a waiting payment to cancelled; a success that still
arrives for it is applied as Paystack's verify tells it and flagged for refund (charges.py).
"""

import secrets
import string

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.services.paystack import charges
from portal.services.transitions import transition

API = "bookings"
S = PaymentStatus
_ALPHABET = string.ascii_lowercase + string.digits
# The document's status names, and the ledger statuses each stands for (history's `status` filter).
STATUS_NAMES = {
    S.PENDING: "pending",
    S.PROCESSING: "pending",
    S.COMPLETED: "success",
    S.FAILED: "failed",
    S.TIMEOUT: "failed",
    S.CANCELLED: "cancelled",
    S.REVERSED: "cancelled",  # refunded: the booking is no longer paid for
}
STATUSES_NAMED = {name: {s for s, n in STATUS_NAMES.items() if n == name} for name in set(STATUS_NAMES.values())}
RETRYABLE = STATUSES_NAMED["failed"] | (STATUSES_NAMED["cancelled"] - {S.REVERSED})
CANCELLABLE = {S.PROCESSING}


class Refused(Exception):
    """A request the payment's state refuses: `status` is the HTTP status, `code` the error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def new_reference(prefix: str) -> str:
    """`<prefix>-<16 lowercase letters and digits>`: booking-..., mpesa-..., mpesa-direct-..., retry-...
    (dashes: a Paystack reference takes letters, digits, '-', '.' and '=' only, and ours is Paystack's)."""
    return f"{prefix}-{''.join(secrets.choice(_ALPHABET) for _ in range(16))}"


KINDS = (charges.CHECKOUT, charges.CHARGE)  # a payer's payments; escrow's payouts are the API's too


def payment_of(merchant: Merchant, reference: str) -> Payment | None:
    """The merchant's bookings payment with this reference; another merchant's or API's, or an
    escrow payout's, is None."""
    payment = Payment.get_for_merchant(merchant.id, reference=reference)
    return payment if payment is not None and payment.api == API and payment.kind in KINDS else None


def _meta(booking_id: str | None, metadata: dict, retry_count: int = 0, callback_url: str | None = None) -> dict:
    meta = {"bookingId": booking_id, "metadata": metadata, "retryCount": retry_count}
    return meta | ({"callbackUrl": callback_url} if callback_url else {})


def _user_ref(metadata: dict) -> str | None:
    user = metadata.get("user_id", metadata.get("userId"))
    return str(user)[:100] if user is not None and not isinstance(user, bool) else None


def initialize(
    merchant: Merchant, *, email: str, amount: int, booking_id: str, metadata: dict, callback_url: str | None
):
    """A hosted checkout (card or M-Pesa on Paystack's page). Raises what charges.start_checkout raises."""
    return charges.start_checkout(
        merchant,
        api=API,
        reference=new_reference("booking"),
        amount=amount,
        email=email,
        callback_url=callback_url,
        meta=_meta(booking_id, metadata, callback_url=callback_url),
        user_ref=_user_ref(metadata),
    )


def charge_mpesa(
    merchant: Merchant, *, prefix: str, phone: str, email: str, amount: int, booking_id: str | None, metadata: dict
):
    """An M-Pesa prompt on the payer's phone through Paystack. Raises what charges.start_mpesa_charge raises."""
    return charges.start_mpesa_charge(
        merchant,
        api=API,
        reference=new_reference(prefix),
        amount=amount,
        email=email,
        phone=phone,
        meta=_meta(booking_id, metadata),
        user_ref=_user_ref(metadata),
    )


def retry(merchant: Merchant, original: Payment, *, phone: str | None, email: str | None):
    """A new payment for what `original` failed to collect: an M-Pesa prompt when there is a
    phone (given, or the original's), else a new checkout. Raises Refused (not failed or
    cancelled; already retried) or what the rail raises."""
    if original.status not in RETRYABLE:
        name = STATUS_NAMES[original.status]
        raise Refused(400, "NOT_RETRYABLE", f"Only failed or cancelled payments can be retried; this one is {name}")
    again = Payment.get_for_merchant(merchant.id, retry_of_id=original.id)
    if again is not None:
        raise Refused(409, "ALREADY_RETRIED", f"This payment was already retried as {again.reference}")
    meta = original.meta or {}
    callback_url = meta.get("callbackUrl")
    count = int(meta.get("retryCount") or 0) + 1
    fields = dict(
        api=API,
        amount=original.amount,
        email=email or original.email,
        meta=_meta(meta.get("bookingId"), meta.get("metadata") or {}, count, callback_url),
        user_ref=original.user_ref,
        retry_of_id=original.id,
    )
    phone = phone or original.phone
    try:
        if phone:
            if original.amount % 100:
                raise Refused(400, "NOT_RETRYABLE", "M-Pesa takes whole shillings: retry this payment by card")
            return charges.start_mpesa_charge(merchant, reference=new_reference("retry-mpesa"), phone=phone, **fields)
        return charges.start_checkout(
            merchant, reference=new_reference("retry"), callback_url=callback_url, phone=None, **fields
        )
    except IntegrityError:  # another retry of the same payment won the race
        db.session.rollback()
        again = Payment.get_for_merchant(merchant.id, retry_of_id=original.id)
        raise Refused(409, "ALREADY_RETRIED", f"This payment was already retried as {again.reference}") from None


def cancel(payment: Payment, reason: str | None) -> None:
    """Marks a waiting payment cancelled (one compare-and-set). Raises Refused when it is not waiting."""
    if payment.status == S.PENDING:
        raise Refused(409, "NOT_CANCELLABLE", "The payment is still being started; try again in a moment")
    detail = f"cancelled through the bookings API: {reason}" if reason else "cancelled through the bookings API"
    if payment.status not in CANCELLABLE or not transition(payment, S.CANCELLED, "api", detail, current=payment.status):
        db.session.rollback()
        name = STATUS_NAMES[current_status_of(payment)]
        raise Refused(400, "NOT_CANCELLABLE", f"Only pending payments can be cancelled; this one is {name}")
    db.session.commit()


def current_status_of(payment: Payment) -> str:
    db.session.refresh(payment)
    return payment.status


def history(merchant: Merchant, user_ref: str, *, limit: int, offset: int, status: str | None):
    """(payments newest first, how many there are in all) of the payer's bookings payments."""
    where = [Payment.merchant_id == merchant.id, Payment.user_ref == user_ref, Payment.api == API]
    where.append(Payment.kind.in_(KINDS))
    if status is not None:
        where.append(Payment.status.in_(sorted(STATUSES_NAMED[status])))
    total = db.session.scalar(select(func.count()).select_from(Payment).where(*where))
    rows = db.session.scalars(
        select(Payment).where(*where).order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total
