"""The Paystack simulator's payouts: transfer recipients (M-Pesa wallets, tills and paybills; a
second creation of the same account answers the first), transfers from the integration's balance
(refused when it holds less; queued `pending`, as with the transfer OTP off) settled by a job
after SANDBOX_CALLBACK_DELAY as planned by the recipient's number:

| account number ends in | transfer | webhook |
|---|---|---|
| 0001 | failed, the amount back in the balance | transfer.failed |
| 0002 | reversed, the amount back in the balance | transfer.reversed |
| 9999 | success | none ever (the lost webhook) |
| anything else | success | transfer.success |
"""

import json
import re
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SandboxPaystackIntegration, SandboxPaystackRecipient, SandboxPaystackTransfer
from portal.queueing import enqueue
from portal.sandbox.paystack import errors, integrations, shapes, webhooks
from portal.sandbox.paystack.schemas import RecipientRequest, TransferRequest
from portal.timeutil import utcnow

BANKS_BY_TYPE = {"mobile_money": {"MPESA"}, "mobile_money_business": {"MPTILL", "MPPAYBILL"}}
SUFFIXES = {"0001": "failed", "0002": "reversed"}
LOST = "9999"
REASONS = {
    "success": "Transfer successful",
    "failed": "The recipient's M-Pesa account could not be credited",
    "reversed": "The transfer was reversed by M-Pesa",
}
WALLET = re.compile(r"(?:\+?254|0)([17][0-9]{8})")
TILL = re.compile(r"[0-9]{5,7}")
TRANSFER_REFERENCE = re.compile(r"[a-z0-9_-]{16,50}")


def _account(asked: RecipientRequest) -> str:
    """The account number as it is kept (a wallet as 07..., the official sample's form)."""
    if asked.bank_code not in BANKS_BY_TYPE[asked.type]:
        raise errors.invalid(f"Bank code {asked.bank_code} cannot be used with a {asked.type} recipient")
    if asked.type == "mobile_money":
        wallet = WALLET.fullmatch(asked.account_number)
        if wallet is None:
            raise errors.invalid("Account number is invalid: an M-Pesa number such as 0712345678")
        return "0" + wallet.group(1)
    if not TILL.fullmatch(asked.account_number):
        raise errors.invalid("Account number is invalid: a till or paybill number of 5 to 7 digits")
    return asked.account_number


def create_recipient(asked: RecipientRequest, integration: SandboxPaystackIntegration) -> SandboxPaystackRecipient:
    """The account's recipient, created once: Paystack answers a second creation with the first."""
    account = _account(asked)
    found = SandboxPaystackRecipient.query.filter_by(
        integration_id=integration.id, bank_code=asked.bank_code, account_number=account
    ).first()
    if found is not None:
        return found
    row = SandboxPaystackRecipient(
        integration_id=integration.id,
        recipient_code=shapes.code(15, "RCP_"),
        type=asked.type,
        name=asked.name,
        account_number=account,
        bank_code=asked.bank_code,
        currency=asked.currency or "KES",
        description=asked.description,
        email=asked.email,
        metadata_json=None if asked.metadata is None else json.dumps(asked.metadata),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # created twice at once: the first one it is
        db.session.rollback()
        return SandboxPaystackRecipient.query.filter_by(
            integration_id=integration.id, bank_code=asked.bank_code, account_number=account
        ).one()
    return row


def plan(account_number: str) -> tuple[str, bool]:
    """(the transfer's outcome, whether its webhook is sent) by the recipient's number."""
    for suffix, outcome in SUFFIXES.items():
        if account_number.endswith(suffix):
            return outcome, True
    return "success", not account_number.endswith(LOST)


def initiate(asked: TransferRequest, integration: SandboxPaystackIntegration) -> SandboxPaystackTransfer:
    """Queues a transfer, its amount taken from the balance now. Raises PaystackRefusal."""
    recipient = SandboxPaystackRecipient.query.filter_by(
        integration_id=integration.id, recipient_code=asked.recipient
    ).first()
    if recipient is None:
        raise errors.invalid_recipient()
    if recipient.type == "mobile_money_business" and not asked.account_reference:
        raise errors.missing("Account reference is required for till and paybill transfers")
    reference = asked.reference or f"trf_{uuid.uuid4()}"
    if SandboxPaystackTransfer.query.filter_by(integration_id=integration.id, reference=reference).first():
        raise errors.duplicate_reference()
    if not integrations.debit(integration.id, asked.amount):
        db.session.rollback()
        raise errors.invalid("Your balance is not enough to fulfil this request", code="insufficient_balance")
    outcome, send_webhook = plan(recipient.account_number)
    delay = float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    now = utcnow()
    row = SandboxPaystackTransfer(
        integration_id=integration.id,
        recipient_id=recipient.id,
        transfer_code=shapes.code(16, "TRF_"),
        reference=reference,
        amount=asked.amount,
        currency=asked.currency or "KES",
        reason=asked.reason,
        account_reference=asked.account_reference,
        status="pending",
        planned=outcome,
        send_webhook=send_webhook,
        resolve_at=now + timedelta(seconds=delay),
        created_at=now,
        updated_at=now,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the same reference, sent twice at once (the debit goes back with it)
        db.session.rollback()
        raise errors.duplicate_reference() from None
    _schedule(row, delay, job_id=f"sandbox-paystack-transfer-{row.id}")
    db.session.commit()
    return row


def _schedule(row: SandboxPaystackTransfer, delay: float, job_id: str | None = None) -> None:
    enqueue("portal.jobs.sandbox_resolve_paystack_transfer", row.id, queue="sandbox", job_id=job_id, delay=delay)


def find(integration: SandboxPaystackIntegration, reference: str) -> SandboxPaystackTransfer:
    row = None
    if TRANSFER_REFERENCE.fullmatch(reference):  # none other can exist (nor be asked of PostgreSQL: NUL)
        row = SandboxPaystackTransfer.query.filter_by(integration_id=integration.id, reference=reference).first()
    if row is None:
        raise errors.PaystackRefusal(404, "Transfer not found")
    return row


def shown(row: SandboxPaystackTransfer) -> dict:
    integration = db.session.get(SandboxPaystackIntegration, row.integration_id)
    return shapes.transfer(row, db.session.get(SandboxPaystackRecipient, row.recipient_id), integration.business_name)


def resolve(transfer_id: int) -> str:
    """The job: settles a pending transfer once its time is up (never before), once however many
    jobs ask; a failed or reversed one gives its amount back to the balance."""
    row = db.session.get(SandboxPaystackTransfer, transfer_id)
    if row is None:
        return "gone"
    early = (row.resolve_at - utcnow()).total_seconds()
    if row.status == "pending" and early > 0:  # RQ's scheduler works to the whole second
        _schedule(row, early)
        db.session.commit()
        return "not yet"
    now = utcnow()
    settled = db.session.execute(
        update(SandboxPaystackTransfer)
        .where(SandboxPaystackTransfer.id == row.id, SandboxPaystackTransfer.status == "pending")
        .values(
            status=row.planned,
            gateway_response=REASONS[row.planned],
            transferred_at=now if row.planned == "success" else None,
            updated_at=now,
        )
    ).rowcount
    if not settled:
        db.session.rollback()
        return "already settled"
    db.session.refresh(row)
    if row.status != "success":
        integrations.credit(row.integration_id, row.amount)
    if row.send_webhook:
        integration = db.session.get(SandboxPaystackIntegration, row.integration_id)
        webhooks.send(integration, f"transfer.{row.status}", shown(row), row.transfer_code)
    db.session.commit()
    return f"transfer {row.status}"
