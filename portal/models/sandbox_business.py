"""State of the Daraja simulator's business side: its RSA key pair and certificate, shortcodes
and their balances, C2B URL registrations and payments, B2C payouts and Transaction Status
queries. Amounts are whole shillings as Daraja sends them; balances are cents."""

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.timeutil import utcnow


class SandboxKeyPair(db.Model):
    """The simulator's RSA key pair: initiator passwords are encrypted to its certificate.
    One row per name, made once and shared by every process; the private key encrypted at rest."""

    __tablename__ = "sandbox_key_pairs"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(32), nullable=False, unique=True)
    certificate = db.Column(db.Text, nullable=False)  # PEM, public: merchants encrypt to it
    private_key = db.Column(EncryptedText, nullable=False)  # PEM (PKCS#8)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxShortcode(db.Model):
    """A simulated organisation's account: C2B payments credit it, B2C payouts debit it."""

    __tablename__ = "sandbox_shortcodes"
    shortcode = db.Column(db.String(12), primary_key=True)
    balance_cents = db.Column(db.BigInteger, nullable=False)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class SandboxC2BRegistration(db.Model):
    """The confirmation and validation URLs an app registered for a shortcode (the latest wins,
    as in Daraja's sandbox). `version` decides how the payer's MSISDN is sent (v1 hashed, v2 masked)."""

    __tablename__ = "sandbox_c2b_registrations"
    __table_args__ = (db.UniqueConstraint("app_id", "shortcode"),)
    id = db.Column(db.Integer, primary_key=True)
    app_id = db.Column(db.Integer, db.ForeignKey("sandbox_apps.id"), nullable=False)
    shortcode = db.Column(db.String(12), nullable=False)
    version = db.Column(db.String(4), nullable=False)
    response_type = db.Column(db.String(16), nullable=False)  # Completed | Cancelled
    confirmation_url = db.Column(EncryptedText, nullable=False)  # may carry the receiver's token
    validation_url = db.Column(EncryptedText, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxC2BPayment(db.Model):
    """A simulated customer payment to a shortcode, with the registration it was made under:
    pending -> validating -> completed | rejected (the validation answer) | cancelled (ResponseType)."""

    __tablename__ = "sandbox_c2b_payments"
    id = db.Column(db.Integer, primary_key=True)
    app_id = db.Column(db.Integer, db.ForeignKey("sandbox_apps.id"), nullable=False, index=True)
    trans_id = db.Column(db.String(16), nullable=False, unique=True)
    originator_conversation_id = db.Column(db.String(64), nullable=False)
    shortcode = db.Column(db.String(12), nullable=False)
    command_id = db.Column(db.String(32), nullable=False)
    amount = db.Column(db.Integer, nullable=False)
    msisdn = db.Column(db.String(12), nullable=False)
    bill_ref = db.Column(db.String(32))
    version = db.Column(db.String(4))  # of the registration; None: no URLs registered
    response_type = db.Column(db.String(16))
    validation_url = db.Column(EncryptedText)
    confirmation_url = db.Column(EncryptedText)
    status = db.Column(db.String(16), nullable=False)
    detail = db.Column(db.String(255))  # why it ended as it did, for people
    third_party_trans_id = db.Column(db.String(64))  # from the validation answer, echoed in the confirmation
    balance_after_cents = db.Column(db.BigInteger)
    resolve_at = db.Column(db.DateTime, nullable=False)
    resolved_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxB2CPayment(db.Model):
    """A B2C payout request. Its outcome is planned when it arrives (credential, amount, the
    recipient's number) and applied once by a conditional UPDATE when its time comes."""

    __tablename__ = "sandbox_b2c_payments"
    __table_args__ = (db.UniqueConstraint("app_id", "originator_conversation_id"),)
    id = db.Column(db.Integer, primary_key=True)
    app_id = db.Column(db.Integer, db.ForeignKey("sandbox_apps.id"), nullable=False)
    version = db.Column(db.String(4), nullable=False)
    originator_conversation_id = db.Column(db.String(64), nullable=False)
    conversation_id = db.Column(db.String(64), nullable=False, unique=True)
    command_id = db.Column(db.String(32), nullable=False)
    amount = db.Column(db.Integer, nullable=False)
    party_a = db.Column(db.String(12), nullable=False)
    party_b = db.Column(db.String(12), nullable=False)
    remarks = db.Column(db.String(100))
    occasion = db.Column(db.String(100))
    result_url = db.Column(EncryptedText, nullable=False)
    timeout_url = db.Column(EncryptedText, nullable=False)
    planned = db.Column(db.String(16), nullable=False)  # an outcome of portal/sandbox/daraja/b2c.py
    resolve_at = db.Column(db.DateTime, nullable=False)
    result_code = db.Column(db.String(16))
    result_desc = db.Column(db.String(255))
    transaction_id = db.Column(db.String(16), index=True)
    balance_after_cents = db.Column(db.BigInteger)
    resolved_at = db.Column(db.DateTime)
    callbacks_sent = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class SandboxStatusQuery(db.Model):
    """A Transaction Status query: acknowledged at once, answered to its ResultURL by a job."""

    __tablename__ = "sandbox_status_queries"
    id = db.Column(db.Integer, primary_key=True)
    app_id = db.Column(db.Integer, db.ForeignKey("sandbox_apps.id"), nullable=False, index=True)
    originator_conversation_id = db.Column(db.String(64), nullable=False)
    conversation_id = db.Column(db.String(64), nullable=False, unique=True)
    credential_ok = db.Column(db.Boolean, nullable=False)
    transaction_id = db.Column(db.String(64))
    original_conversation_id = db.Column(db.String(64))
    party_a = db.Column(db.String(12), nullable=False)
    identifier_type = db.Column(db.String(2), nullable=False)
    remarks = db.Column(db.String(100))
    occasion = db.Column(db.String(100))
    result_url = db.Column(EncryptedText, nullable=False)
    timeout_url = db.Column(EncryptedText, nullable=False)
    resolve_at = db.Column(db.DateTime, nullable=False)
    result_code = db.Column(db.String(16))
    answered_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
