"""The Paystack simulator's transactions: initialize (a hosted checkout at the authorization URL),
the lookups verify and the checkout make, and the one way a transaction ends (`finish`): a
conditional UPDATE out of an open state, so a person at the checkout, a prompt's job and a late
verify racing for one transaction cannot both end it. A success credits the integration's
balance (less fees) and is the only outcome Paystack sends a webhook for (charge.success)."""

import json
import math
import re

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SandboxPaystackIntegration, SandboxPaystackTransaction
from portal.sandbox.paystack import errors, integrations, shapes, webhooks
from portal.sandbox.paystack.schemas import InitializeRequest
from portal.timeutil import utcnow

KES = "KES"
MINIMUM = 300  # KES 3.00, Paystack's documented smallest KES transaction
OPEN = ("abandoned", "pending", "ongoing")  # initialized and unpaid, or a prompt waiting
REFERENCE = re.compile(r"[A-Za-z0-9.=-]{1,100}")  # what schemas.Reference lets in, and generated ones
ACCESS_CODE = re.compile(r"[a-z0-9]{15}")
FEES_PER_THOUSAND = {"mobile_money": 15, "card": 29}  # 1.5% and 2.9% (Kenya's published pricing)


def stored_metadata(value) -> str:
    """The metadata as it will be echoed: what was sent, or "" when nothing was (Paystack's way)."""
    return '""' if value is None else json.dumps(value)


def check_amount(amount: int) -> None:
    if amount < MINIMUM:
        raise errors.invalid_amount()


def find(integration: SandboxPaystackIntegration, reference: str) -> SandboxPaystackTransaction | None:
    """The integration's transaction; None for a reference no transaction can have (never asked
    of the database: a NUL in a URL would fail PostgreSQL's query)."""
    if not REFERENCE.fullmatch(reference):
        return None
    return SandboxPaystackTransaction.query.filter_by(integration_id=integration.id, reference=reference).first()


def insert(integration: SandboxPaystackIntegration, reference: str, **fields) -> SandboxPaystackTransaction:
    """A new transaction, committed; a reference the integration has used is refused."""
    if find(integration, reference) is not None:
        raise errors.duplicate_reference()
    tx = SandboxPaystackTransaction(integration_id=integration.id, reference=reference, **fields)
    db.session.add(tx)
    try:
        db.session.commit()
    except IntegrityError:  # the same reference, sent twice at once
        db.session.rollback()
        raise errors.duplicate_reference() from None
    return tx


def initialize(asked: InitializeRequest, integration: SandboxPaystackIntegration, ip: str | None):
    check_amount(asked.amount)
    return insert(
        integration,
        asked.reference or shapes.code(10),
        access_code=shapes.code(15),
        amount=asked.amount,
        currency=asked.currency or KES,
        email=asked.email,
        status="abandoned",  # what verify says of a checkout nobody has paid
        callback_url=asked.callback_url,
        metadata_json=stored_metadata(asked.metadata),
        channels=asked.channels,
        ip_address=ip,
    )


def verify(integration: SandboxPaystackIntegration, reference: str, not_found_status: int):
    """The integration's transaction; another integration's answers as a missing one does."""
    tx = find(integration, reference)
    if tx is None:
        raise errors.PaystackRefusal(not_found_status, "Transaction reference not found")
    return tx


def by_access_code(access_code: str) -> SandboxPaystackTransaction | None:
    if not ACCESS_CODE.fullmatch(access_code):
        return None
    return SandboxPaystackTransaction.query.filter_by(access_code=access_code).first()


def whole_shillings(subunits: int) -> int:
    """What M-Pesa would be asked for a card-priced amount: cents round up to a shilling."""
    return math.ceil(subunits / 100)


def finish(
    tx: SandboxPaystackTransaction,
    status: str,
    gateway_response: str,
    message: str | None,
    *,
    channel: str,
    authorization: dict | None = None,
    phone: str | None = None,
    receipt: str | None = None,
    send_webhook: bool = True,
) -> bool:
    """Ends an open transaction and commits. A success is paid now: fees, the integration's
    balance, and charge.success to its webhook URL (unless `send_webhook` is False, the lost
    webhook). False if it had already ended."""
    now = utcnow()
    fees = tx.amount * FEES_PER_THOUSAND.get(channel, 15) // 1000 if status == "success" else None
    values = dict(
        status=status,
        gateway_response=gateway_response[:255],
        message=message[:255] if message else None,
        channel=channel,
        authorization=authorization if status == "success" else None,
        phone=phone or tx.phone,
        receipt_number=receipt,
        fees=fees,
        paid_at=now if status == "success" else None,
        send_webhook=send_webhook,
    )
    ended = db.session.execute(
        update(SandboxPaystackTransaction)
        .where(SandboxPaystackTransaction.id == tx.id, SandboxPaystackTransaction.status.in_(OPEN))
        .values(**values)
    ).rowcount
    if not ended:
        db.session.rollback()
        return False
    db.session.flush()
    db.session.refresh(tx)
    if status == "success":
        integrations.credit(tx.integration_id, tx.amount - fees)
        if send_webhook:
            integration = db.session.get(SandboxPaystackIntegration, tx.integration_id)
            tx.webhooks_sent = webhooks.send(integration, "charge.success", shapes.transaction(tx), tx.reference)
    db.session.commit()
    return True
