"""Escrow (the bookings document): a booking's successful payment is held until the merchant
releases it to the teacher, or refunds it.

One row per held payment. Its states: held → releasing → released | failed (a failed release
may be tried again: failed → releasing); held | failed → refunded. `payout_id` is the ledger row
of the release's current payout (a Paystack transfer or a Daraja B2C payout), whose own states
settle the release. A payment that arrived for a booking that was already paid, or after the
payment was cancelled, is held with `refund_due` set and the reason, so a person refunds it."""

from portal.extensions import db
from portal.models.merchant import MerchantScoped
from portal.timeutil import utcnow


class EscrowStatus:
    HELD = "held"
    RELEASING = "releasing"
    RELEASED = "released"
    FAILED = "failed"
    REFUNDED = "refunded"
    ALL = (HELD, RELEASING, RELEASED, FAILED, REFUNDED)


class Escrow(MerchantScoped, db.Model):
    __tablename__ = "escrows"
    __table_args__ = (
        db.Index("ix_escrows_merchant_booking", "merchant_id", "booking_id"),
        db.Index("ix_escrows_merchant_status", "merchant_id", "status"),
    )
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False)
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), nullable=False, unique=True)
    booking_id = db.Column(db.String(100), nullable=False)
    amount = db.Column(db.BigInteger, nullable=False)  # held, minor units
    currency = db.Column(db.String(3), nullable=False, default="KES")
    status = db.Column(db.String(16), nullable=False, default=EscrowStatus.HELD)
    payee_phone = db.Column(db.String(12))  # the teacher, once a release names them
    released_amount = db.Column(db.BigInteger)  # minor units; at most `amount` (the rest stays with the merchant)
    rail = db.Column(db.String(16))  # the release's payout rail: paystack (transfer) or mpesa (B2C)
    payout_id = db.Column(db.Integer, db.ForeignKey("payments.id"))
    attempts = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # releases tried
    refund_due = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    refund_reason = db.Column(db.Text)
    failure = db.Column(db.Text)  # why the last release or refund failed
    meta = db.Column("metadata", db.JSON, nullable=False, default=dict)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    released_at = db.Column(db.DateTime)
    refunded_at = db.Column(db.DateTime)

    payment = db.relationship("Payment", foreign_keys=[payment_id])
    payout = db.relationship("Payment", foreign_keys=[payout_id])
