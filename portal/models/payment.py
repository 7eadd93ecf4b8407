"""The ledger: payments, their timelines, raw provider callbacks and idempotency records.

Amounts are integers in minor units (cents); money is never a float.
"""

from sqlalchemy import and_
from sqlalchemy.ext.hybrid import hybrid_property

from portal.extensions import db
from portal.models.merchant import MerchantScoped
from portal.timeutil import utcnow


class PaymentStatus:
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    REVERSED = "reversed"

    # Statuses a payment may move *to*, each with the statuses it may move *from*.
    # timeout and cancelled may still become completed: the customer's money wins.
    ALLOWED_FROM = {
        PROCESSING: {PENDING},
        COMPLETED: {PROCESSING, TIMEOUT, CANCELLED},
        FAILED: {PENDING, PROCESSING, TIMEOUT},
        CANCELLED: {PROCESSING, TIMEOUT},
        TIMEOUT: {PENDING, PROCESSING},
        REVERSED: {COMPLETED, PROCESSING},  # a payment refunded; a payout (transfer) sent back
    }
    FINAL = {COMPLETED, FAILED, CANCELLED, REVERSED}
    ALL = (PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED, TIMEOUT, REVERSED)


class Payment(MerchantScoped, db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        db.Index("ix_payments_merchant_created", "merchant_id", "created_at"),
        db.Index("ix_payments_merchant_status", "merchant_id", "status"),
        db.Index("ix_payments_merchant_phone", "merchant_id", "phone"),
        db.Index("ix_payments_merchant_user", "merchant_id", "user_ref"),
    )
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False)
    reference = db.Column(db.String(40), nullable=False, unique=True)
    uid = db.Column(db.String(36), unique=True)  # a UUID for APIs that name payments by one (isp: transaction_id)
    rail = db.Column(db.String(16), nullable=False)
    kind = db.Column(db.String(16), nullable=False)
    status = db.Column(db.String(16), nullable=False, default=PaymentStatus.PENDING)
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False, default="KES")
    phone = db.Column(db.String(12))
    email = db.Column(db.String(254))
    user_ref = db.Column(db.String(100))  # the caller's own id of the payer (bookings: metadata.user_id)
    account_reference = db.Column(db.String(64))
    description = db.Column(db.String(255))
    checkout_request_id = db.Column(db.String(64), unique=True)
    merchant_request_id = db.Column(db.String(64))
    conversation_id = db.Column(db.String(64), index=True)
    provider_reference = db.Column(db.String(100), index=True)
    receipt = db.Column(db.String(32), index=True)
    result_code = db.Column(db.String(16))
    result_desc = db.Column(db.Text)
    customer_message = db.Column(db.String(255))
    transaction_date = db.Column(db.String(14))
    meta = db.Column("metadata", db.JSON, nullable=False, default=dict)
    api = db.Column(db.String(16), nullable=False)
    idempotency_key = db.Column(db.String(255))
    retry_of_id = db.Column(db.Integer, db.ForeignKey("payments.id"), unique=True)  # a payment is retried once
    attempts = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # payouts: attempts sent
    last_queried_at = db.Column(db.DateTime)  # last asked about (STK query), or last failed on, by the sweeper
    sweep_error = db.Column(db.Text)  # why the sweeper last failed on this row, if it did
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    completed_at = db.Column(db.DateTime)

    events = db.relationship("PaymentEvent", order_by="PaymentEvent.id", lazy="select", back_populates="payment")

    @property
    def is_final(self) -> bool:
        return self.status in PaymentStatus.FINAL

    @hybrid_property
    def refused(self) -> bool:
        """Failed before the provider took it (Daraja refused the push, or could not be reached):
        no provider id of any kind was ever stored, so no customer was ever asked to pay."""
        return (
            self.status == PaymentStatus.FAILED
            and self.checkout_request_id is None
            and self.conversation_id is None
            and self.provider_reference is None
        )

    @refused.expression
    def refused(cls):
        return and_(
            cls.status == PaymentStatus.FAILED,
            cls.checkout_request_id.is_(None),
            cls.conversation_id.is_(None),
            cls.provider_reference.is_(None),
        )

    @property
    def amount_major(self) -> int | float:
        """The amount in whole currency units, as an int when it has no cents."""
        whole, cents = divmod(self.amount, 100)
        return whole if cents == 0 else self.amount / 100


class PaymentEvent(db.Model):
    __tablename__ = "payment_events"
    id = db.Column(db.Integer, primary_key=True)
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), nullable=False, index=True)
    from_status = db.Column(db.String(16))
    to_status = db.Column(db.String(16), nullable=False)
    source = db.Column(db.String(16), nullable=False)
    detail = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    payment = db.relationship(Payment, back_populates="events")


# The partial indexes' conditions. Queries use them as they are: a value sent as a parameter
# would hide from the planner that the index covers the rows asked for.
UNREAD = db.text("outcome = 'received'")
ORPHANED = db.text("outcome = 'orphan'")


class Callback(db.Model):
    """Every inbound provider request, stored raw before it is interpreted."""

    __tablename__ = "callbacks"
    # Partial indexes: the rows the sweeper and a new push look for (unread, orphaned) are a
    # handful in a table that only grows, and a row drops out of them once it is read.
    __table_args__ = (
        db.Index("ix_callbacks_unread", "received_at", postgresql_where=UNREAD, sqlite_where=UNREAD),
        db.Index("ix_callbacks_orphans", "provider_id", postgresql_where=ORPHANED, sqlite_where=ORPHANED),
    )
    id = db.Column(db.Integer, primary_key=True)
    provider = db.Column(db.String(16), nullable=False)
    kind = db.Column(db.String(32), nullable=False)
    path = db.Column(db.String(255), nullable=False)
    # The bytes exactly as they arrived: NUL, invalid UTF-8 and all (text columns refuse some of them).
    raw = db.Column(db.LargeBinary, nullable=False)
    headers = db.Column(db.JSON, nullable=False, default=dict)
    query_string = db.Column(db.Text)
    source_ip = db.Column(db.String(64))
    token_valid = db.Column(db.Boolean, nullable=False, default=False)
    provider_id = db.Column(db.String(64))  # CheckoutRequestID, TransID, ...
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), index=True)
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), index=True)
    outcome = db.Column(db.String(16), nullable=False, default="received")
    outcome_detail = db.Column(db.Text)
    received_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    processed_at = db.Column(db.DateTime)

    @property
    def body(self) -> str:
        """The body as text for people: undecodable bytes are shown as U+FFFD."""
        return bytes(self.raw).decode("utf-8", "replace")

    @body.setter
    def body(self, text: str) -> None:
        self.raw = text.encode("utf-8", "surrogatepass")


class IdempotencyRecord(db.Model):
    """The first answer to a request carrying an Idempotency-Key, replayed to its repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (db.UniqueConstraint("merchant_id", "api", "key", name="uq_idempotency_merchant_api_key"),)
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False)
    api = db.Column(db.String(16), nullable=False)
    key = db.Column(db.String(255), nullable=False)
    request_hash = db.Column(db.String(64), nullable=False)
    status_code = db.Column(db.Integer)  # None while the first request is still running
    response_body = db.Column(db.JSON)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
