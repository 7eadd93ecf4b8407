"""Dead letters: jobs that failed for good (their retries exhausted, or a failure retrying
cannot fix), kept in the database because Redis may lose everything."""

from portal.extensions import db
from portal.models.merchant import MerchantScoped
from portal.timeutil import utcnow


class DeadLetterStatus:
    FAILED = "failed"  # waiting for someone to look at it
    RETRYING = "retrying"  # re-enqueued by hand; its job decides what comes next
    RESOLVED = "resolved"  # a retry ran to the end

    ALL = (FAILED, RETRYING, RESOLVED)


# The partial unique index's condition: one open row per job (function and arguments).
OPEN = db.text("status <> 'resolved'")


class DeadLetter(MerchantScoped, db.Model):
    """One failing job: the same job failing again while its row is open adds to that row."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        db.Index("ix_dead_letters_merchant_created", "merchant_id", "created_at"),
        db.Index("ix_dead_letters_merchant_failed", "merchant_id", "failed_at"),
        db.Index(
            "uq_dead_letters_open_fingerprint", "fingerprint", unique=True, postgresql_where=OPEN, sqlite_where=OPEN
        ),
    )
    id = db.Column(db.Integer, primary_key=True)
    # Whose it is: null for jobs that concern no merchant (the simulators', for one); nobody's list shows those.
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"))
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), index=True)
    job_id = db.Column(db.String(128), nullable=False)  # the RQ job id it last failed under
    func = db.Column(db.String(255), nullable=False)  # dotted path of the job function
    args = db.Column(db.JSON, nullable=False, default=list)  # positional, as every job takes them
    queue = db.Column(db.String(32), nullable=False)
    fingerprint = db.Column(db.String(64), nullable=False)  # SHA-256 of function and arguments
    error_type = db.Column(db.String(255), nullable=False)
    error = db.Column(db.Text, nullable=False)  # the exception's message
    traceback = db.Column(db.Text)  # its end, for whoever runs the servers; never shown to merchants
    attempts = db.Column(db.Integer, nullable=False, default=1)  # failed runs, over every retry
    status = db.Column(db.String(16), nullable=False, default=DeadLetterStatus.FAILED)
    retry_count = db.Column(db.Integer, nullable=False, default=0)  # retries asked for by hand
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)  # first failure
    failed_at = db.Column(db.DateTime, nullable=False, default=utcnow)  # latest failure
    retried_at = db.Column(db.DateTime)
    resolved_at = db.Column(db.DateTime)
    payment = db.relationship("Payment")

    @property
    def name(self) -> str:
        return self.func.rpartition(".")[2]

    @property
    def is_retrying(self) -> bool:
        return self.status == DeadLetterStatus.RETRYING

    @property
    def is_resolved(self) -> bool:
        return self.status == DeadLetterStatus.RESOLVED
