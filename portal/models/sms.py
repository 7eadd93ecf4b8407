"""Text messages a merchant sends its customers (OTPs, notices) through Africa's Talking, and
what became of each. The text is encrypted at rest: it carries one-time codes in clear."""

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.models.merchant import MerchantScoped
from portal.timeutil import utcnow


class SmsStatus:
    QUEUED = "queued"  # waiting for its send job
    SENDING = "sending"  # claimed by a worker that is calling Africa's Talking
    SENT = "sent"  # Africa's Talking took it (a messageId); its delivery is not known yet
    FAILED = "failed"  # refused, or never taken after every retry
    DELIVERED = "delivered"  # the delivery report says it reached the handset
    REJECTED = "rejected"  # the delivery report says it never will

    ALL = (QUEUED, SENDING, SENT, FAILED, DELIVERED, REJECTED)
    FINAL = (FAILED, DELIVERED, REJECTED)


class Sms(MerchantScoped, db.Model):
    """One message to one number. `dedupe_key` is the caller's name for it (otp-<id>-<issue>):
    asking for the same message twice finds the first row instead of making a second."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        db.UniqueConstraint("merchant_id", "dedupe_key", name="uq_sms_messages_merchant_dedupe_key"),
        db.Index("ix_sms_messages_status_updated", "status", "updated_at"),
    )
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    to = db.Column(db.String(16), nullable=False)  # 254XXXXXXXXX
    message = db.Column(EncryptedText, nullable=False)
    purpose = db.Column(db.String(32), nullable=False)  # otp, notice, ...
    dedupe_key = db.Column(db.String(128), nullable=False)
    status = db.Column(db.String(16), nullable=False, default=SmsStatus.QUEUED)
    attempts = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # calls claimed so far
    claimed_at = db.Column(db.DateTime)  # when the current (or last) send was claimed
    provider_message_id = db.Column(db.String(64), index=True)  # AT's messageId (ATXid_...)
    provider_status = db.Column(db.String(32))  # AT's word for it: Success, UserInBlacklist, then the report's
    cost = db.Column(db.String(32))  # as AT states it: "KES 0.8000"
    failure_reason = db.Column(db.String(64))  # a delivery report's, when it failed
    last_error = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    sent_at = db.Column(db.DateTime)
    delivered_at = db.Column(db.DateTime)  # when a final delivery report arrived

    @property
    def is_final(self) -> bool:
        return self.status in SmsStatus.FINAL
