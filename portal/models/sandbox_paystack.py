"""State of the Paystack simulator: integrations (a merchant's Paystack account: keys, webhook URL,
balance), transactions (initialized checkouts and mobile-money charges), transfer recipients,
transfers and refunds. Amounts are Paystack's subunits (KES cents), as on the wire."""

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.timeutil import utcnow


class SandboxPaystackIntegration(db.Model):
    """A Paystack account. The secret key is found by its SHA-256 (every call names it) and kept
    encrypted for signing webhooks; the webhook URL is what Paystack's dashboard would hold."""

    __tablename__ = "sandbox_paystack_integrations"
    id = db.Column(db.Integer, primary_key=True)
    business_name = db.Column(db.String(120), nullable=False)
    secret_key_hash = db.Column(db.String(64), nullable=False, unique=True)
    secret_key = db.Column(EncryptedText, nullable=False)
    public_key = db.Column(db.String(64), nullable=False, unique=True)
    webhook_url = db.Column(EncryptedText)  # may carry the receiver's token; none: no webhooks
    balance = db.Column(db.BigInteger, nullable=False)  # subunits
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxPaystackTransaction(db.Model):
    """A transaction: initialized for the hosted checkout (`access_code`), or a mobile-money charge
    whose M-Pesa prompt is a SandboxStkRequest owned by it. abandoned (initialized, unpaid) |
    pending (a prompt open) -> success | failed | abandoned; success -> reversed (fully refunded)."""

    __tablename__ = "sandbox_paystack_transactions"
    __table_args__ = (db.UniqueConstraint("integration_id", "reference"),)
    id = db.Column(db.Integer, primary_key=True)
    integration_id = db.Column(db.Integer, db.ForeignKey("sandbox_paystack_integrations.id"), nullable=False)
    reference = db.Column(db.String(100), nullable=False)
    access_code = db.Column(db.String(32), unique=True)  # initialized ones: the checkout's address
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False)
    email = db.Column(db.String(254), nullable=False)
    status = db.Column(db.String(16), nullable=False)
    channel = db.Column(db.String(16))  # card | mobile_money, once known
    phone = db.Column(db.String(16))  # +254..., for mobile money
    callback_url = db.Column(EncryptedText)  # where the checkout sends the browser; may carry a token
    metadata_json = db.Column(db.Text, nullable=False, default='""')  # what was sent, echoed as sent
    channels = db.Column(db.JSON)
    gateway_response = db.Column(db.String(255))
    message = db.Column(db.String(255))
    receipt_number = db.Column(db.String(16))  # the M-Pesa receipt of a paid mobile-money charge
    authorization = db.Column(db.JSON)  # set when paid
    fees = db.Column(db.BigInteger)
    refunded = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    ip_address = db.Column(db.String(64))
    send_webhook = db.Column(db.Boolean, nullable=False, default=True)  # False: the lost-webhook case
    webhooks_sent = db.Column(db.Integer, nullable=False, default=0)
    paid_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxPaystackRecipient(db.Model):
    """A transfer recipient; one per account (number and bank code) and integration, as Paystack
    answers a second creation with the first."""

    __tablename__ = "sandbox_paystack_recipients"
    __table_args__ = (db.UniqueConstraint("integration_id", "bank_code", "account_number"),)
    id = db.Column(db.Integer, primary_key=True)
    integration_id = db.Column(db.Integer, db.ForeignKey("sandbox_paystack_integrations.id"), nullable=False)
    recipient_code = db.Column(db.String(32), nullable=False, unique=True)
    type = db.Column(db.String(32), nullable=False)
    name = db.Column(db.String(120), nullable=False)
    account_number = db.Column(db.String(20), nullable=False)
    bank_code = db.Column(db.String(16), nullable=False)
    currency = db.Column(db.String(3), nullable=False)
    description = db.Column(db.String(255))
    email = db.Column(db.String(254))
    metadata_json = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxPaystackTransfer(db.Model):
    """A payout from the integration's balance: pending -> success | failed | reversed, as
    planned when it was asked for (the recipient's number decides), settled by a job."""

    __tablename__ = "sandbox_paystack_transfers"
    __table_args__ = (db.UniqueConstraint("integration_id", "reference"),)
    id = db.Column(db.Integer, primary_key=True)
    integration_id = db.Column(db.Integer, db.ForeignKey("sandbox_paystack_integrations.id"), nullable=False)
    recipient_id = db.Column(db.Integer, db.ForeignKey("sandbox_paystack_recipients.id"), nullable=False)
    transfer_code = db.Column(db.String(32), nullable=False, unique=True)
    reference = db.Column(db.String(50), nullable=False)
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False)
    reason = db.Column(db.String(255))
    account_reference = db.Column(db.String(64))
    status = db.Column(db.String(16), nullable=False)
    planned = db.Column(db.String(16), nullable=False)  # success | failed | reversed
    send_webhook = db.Column(db.Boolean, nullable=False, default=True)
    gateway_response = db.Column(db.String(255))
    resolve_at = db.Column(db.DateTime, nullable=False)
    transferred_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxPaystackRefund(db.Model):
    """A refund of (part of) a successful transaction: pending -> processed, settled by a job."""

    __tablename__ = "sandbox_paystack_refunds"
    id = db.Column(db.Integer, primary_key=True)
    integration_id = db.Column(db.Integer, db.ForeignKey("sandbox_paystack_integrations.id"), nullable=False)
    transaction_id = db.Column(
        db.Integer, db.ForeignKey("sandbox_paystack_transactions.id"), nullable=False, index=True
    )
    amount = db.Column(db.BigInteger, nullable=False)
    currency = db.Column(db.String(3), nullable=False)
    status = db.Column(db.String(16), nullable=False)
    customer_note = db.Column(db.String(255))
    merchant_note = db.Column(db.String(255))
    processed_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
