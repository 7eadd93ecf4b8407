"""State of the provider simulators: apps and tokens, STK prompts on virtual phones, and the
callbacks and webhooks they deliver (every attempt kept as evidence). The Daraja simulator's
business side (C2B, B2C, Transaction Status) is in sandbox_business."""

from sqlalchemy.orm import deferred

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.timeutil import utcnow


class SandboxApp(db.Model):
    """A Daraja app: consumer key and secret that the simulator's OAuth accepts."""

    __tablename__ = "sandbox_apps"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    consumer_key = db.Column(db.String(64), nullable=False, unique=True)
    consumer_secret = db.Column(db.String(64), nullable=False)
    # The API operator B2C and Transaction Status authenticate as (its password arrives RSA-encrypted).
    # Deferred: every simulated call loads its app by token, and only those two need them.
    initiator_name = deferred(db.Column(db.String(64)), group="initiator")
    initiator_password = deferred(db.Column(EncryptedText), group="initiator")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxToken(db.Model):
    __tablename__ = "sandbox_tokens"
    id = db.Column(db.Integer, primary_key=True)
    app_id = db.Column(db.Integer, db.ForeignKey("sandbox_apps.id"), nullable=False, index=True)
    token = db.Column(db.String(64), nullable=False, unique=True)
    expires_at = db.Column(db.DateTime, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxStkRequest(db.Model):
    """One STK prompt. `open_phone` holds the phone while the prompt is open: its unique
    index is the subscriber lock, so two concurrent pushes cannot both open a prompt."""

    __tablename__ = "sandbox_stk_requests"
    id = db.Column(db.Integer, primary_key=True)
    checkout_request_id = db.Column(db.String(64), nullable=False, unique=True)
    merchant_request_id = db.Column(db.String(64), nullable=False)
    shortcode = db.Column(db.String(12), nullable=False)
    phone = db.Column(db.String(12), nullable=False, index=True)
    open_phone = db.Column(db.String(12), unique=True)
    amount = db.Column(db.Integer, nullable=False)
    account_reference = db.Column(db.String(64))
    description = db.Column(db.String(64))
    callback_url = db.Column(EncryptedText, nullable=False)  # its query carries the receiver's callback token
    business_name = db.Column(db.String(120))  # shown on the prompt: "Pay KES 100 to DEMO SHOP?"
    interactive = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    planned_code = db.Column(db.Integer, nullable=False)
    send_callback = db.Column(db.Boolean, nullable=False, default=True)
    resolve_at = db.Column(db.DateTime, nullable=False)
    result_code = db.Column(db.Integer)
    result_desc = db.Column(db.String(255))
    receipt = db.Column(db.String(16))
    resolved_at = db.Column(db.DateTime)
    callbacks_sent = db.Column(db.Integer, nullable=False, default=0)  # copies handed to delivery
    queries = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # STK queries answered about it
    # A prompt opened for another simulator (Paystack's M-Pesa charges): its name and row id there.
    # Closed, it is settled by what that simulator registered for it, and no Daraja callback goes out.
    owner = db.Column(db.String(16))
    owner_id = db.Column(db.Integer)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class SandboxSms(db.Model):
    """A text message the Africa's Talking simulator was asked to send, one row per recipient,
    refused ones too. Virtual phones show those `delivered` to them. The text is encrypted: it
    carries one-time codes."""

    __tablename__ = "sandbox_sms"
    id = db.Column(db.Integer, primary_key=True)
    to = db.Column(db.String(16), nullable=False, index=True)  # as AT answers it: +254...
    sender = db.Column(db.String(32), nullable=False)
    message = db.Column(EncryptedText, nullable=False)
    message_id = db.Column(db.String(64), unique=True)  # ATXid_...; none for a refused recipient ("None")
    status_code = db.Column(db.Integer, nullable=False, default=101, server_default="101")  # AT's per recipient
    status = db.Column(db.String(32), nullable=False, default="Success", server_default="Success")
    cost = db.Column(db.String(32), nullable=False, default="0", server_default="0")
    # The delivery report it gets (Success or Failed); none for a refused recipient.
    delivery_status = db.Column(db.String(16))
    delivered = db.Column(db.Boolean, nullable=False, default=True, server_default=db.true())  # on the handset
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxDelivery(db.Model):
    """One copy of a callback or webhook a simulator sends (portal/sandbox/delivery.py).

    `url` is the address with its query redacted, for people to read; `target` is the full
    address, encrypted, because its query carries the receiver's callback token.
    """

    __tablename__ = "sandbox_deliveries"
    id = db.Column(db.Integer, primary_key=True)
    provider = db.Column(db.String(32), nullable=False)
    kind = db.Column(db.String(32), nullable=False)
    subject = db.Column(db.String(64), nullable=False, index=True)  # e.g. the CheckoutRequestID
    url = db.Column(db.Text, nullable=False)
    target = db.Column(EncryptedText, nullable=False)
    body = db.Column(db.Text, nullable=False)
    headers = db.Column(db.JSON)
    copy = db.Column(db.Integer, nullable=False, default=1)
    status = db.Column(db.String(16), nullable=False)  # held, pending, delivered, failed
    attempts = db.Column(db.Integer, nullable=False, default=0)
    max_attempts = db.Column(db.Integer, nullable=False, default=1)
    lost_attempts = db.Column(db.Integer, nullable=False, default=0)  # fault switch: lost on the way
    backoff = db.Column(db.Float, nullable=False, default=1.0)  # seconds before the first retry
    # each further retry waits this many times longer (2: doubling; 1: a fixed interval, as Paystack's)
    backoff_factor = db.Column(db.Float, nullable=False, default=2.0, server_default="2")
    not_before = db.Column(db.DateTime, nullable=False)
    reorder_group = db.Column(db.String(32), index=True)  # fault switch: a group delivered newest first
    reorder_position = db.Column(db.Integer)
    last_outcome = db.Column(db.String(255))
    answer = db.Column(db.Text)  # the start of what the receiver answered (a C2B validation's verdict)
    timeout = db.Column(db.Float)  # seconds the receiver has to answer; None: delivery.TIMEOUT
    on_done = db.Column(db.String(128))  # a job given this row's id once it is delivered or has failed
    delivered_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SandboxDeliveryAttempt(db.Model):
    """One attempt at a delivery: what came of it."""

    __tablename__ = "sandbox_delivery_attempts"
    id = db.Column(db.Integer, primary_key=True)
    delivery_id = db.Column(db.Integer, db.ForeignKey("sandbox_deliveries.id"), nullable=False, index=True)
    number = db.Column(db.Integer, nullable=False)
    ok = db.Column(db.Boolean, nullable=False)
    status_code = db.Column(db.Integer)
    outcome = db.Column(db.String(255), nullable=False)  # "HTTP 200", "failed: ConnectionError", "lost (fault)"
    at = db.Column(db.DateTime, nullable=False, default=utcnow)
