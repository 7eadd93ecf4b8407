"""The Paystack simulator's refunds (POST /refund): of a successful transaction, whole or in part,
never more than is left of it. Queued `pending` (refund.pending), processed by a job after
SANDBOX_CALLBACK_DELAY (refund.processed); a transaction refunded in full is then `reversed`.
The amount leaves the integration's balance when the refund is asked for."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from portal.extensions import db
from portal.models import SandboxPaystackIntegration, SandboxPaystackRefund, SandboxPaystackTransaction
from portal.queueing import enqueue
from portal.sandbox.paystack import errors, integrations, shapes, webhooks
from portal.sandbox.paystack.schemas import RefundRequest
from portal.timeutil import utcnow


def _transaction(integration: SandboxPaystackIntegration, given: str | int) -> SandboxPaystackTransaction:
    query = SandboxPaystackTransaction.query.filter_by(integration_id=integration.id)
    if isinstance(given, int):
        row_id = given - shapes.TRANSACTION_IDS
        tx = query.filter_by(id=row_id).first() if 0 < row_id < 2**31 else None  # a row id: an INTEGER
    else:
        tx = query.filter_by(reference=given).first()
    if tx is None:
        raise errors.PaystackRefusal(404, "Transaction not found")
    return tx


def refund(asked: RefundRequest, integration: SandboxPaystackIntegration):
    """Queues a refund; (the refund, its transaction). Raises PaystackRefusal."""
    tx = _transaction(integration, asked.transaction)
    if tx.status == "reversed":
        raise errors.invalid("Transaction has been fully reversed")
    if tx.status != "success":
        raise errors.invalid("Transaction has not been completed: only successful transactions can be refunded")
    amount = asked.amount if asked.amount is not None else tx.amount - tx.refunded
    if amount > tx.amount - tx.refunded:
        raise errors.invalid("Refund amount cannot be more than what is left of the transaction", code="invalid_amount")
    taken = db.session.execute(  # one conditional UPDATE: two refunds at once cannot overdraw it
        update(SandboxPaystackTransaction)
        .where(SandboxPaystackTransaction.id == tx.id, SandboxPaystackTransaction.refunded + amount <= tx.amount)
        .values(refunded=SandboxPaystackTransaction.refunded + amount)
    ).rowcount
    if not taken:
        db.session.rollback()
        raise errors.invalid("Refund amount cannot be more than what is left of the transaction", code="invalid_amount")
    integrations.credit(integration.id, -amount)
    row = SandboxPaystackRefund(
        integration_id=integration.id,
        transaction_id=tx.id,
        amount=amount,
        currency=tx.currency,
        status="pending",
        customer_note=asked.customer_note,
        merchant_note=asked.merchant_note,
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    webhooks.send(integration, "refund.pending", shapes.refund_event(row, tx), tx.reference)
    enqueue(
        "portal.jobs.sandbox_process_paystack_refund",
        row.id,
        queue="sandbox",
        job_id=f"sandbox-paystack-refund-{row.id}",
        delay=float(current_app.config["SANDBOX_CALLBACK_DELAY"]),
    )
    db.session.commit()
    return row, tx


def process(refund_id: int) -> str:
    """The job: a pending refund is processed, once however many jobs ask."""
    row = db.session.get(SandboxPaystackRefund, refund_id)
    if row is None:
        return "gone"
    due = row.created_at + timedelta(seconds=float(current_app.config["SANDBOX_CALLBACK_DELAY"]))
    early = (due - utcnow()).total_seconds()
    if row.status == "pending" and early > 0:  # RQ's scheduler works to the whole second
        enqueue("portal.jobs.sandbox_process_paystack_refund", row.id, queue="sandbox", delay=early)
        db.session.commit()
        return "not yet"
    processed = db.session.execute(
        update(SandboxPaystackRefund)
        .where(SandboxPaystackRefund.id == row.id, SandboxPaystackRefund.status == "pending")
        .values(status="processed", processed_at=utcnow())
    ).rowcount
    if not processed:
        db.session.rollback()
        return "already processed"
    db.session.refresh(row)
    tx = db.session.get(SandboxPaystackTransaction, row.transaction_id)
    db.session.execute(
        update(SandboxPaystackTransaction)
        .where(
            SandboxPaystackTransaction.id == tx.id,
            SandboxPaystackTransaction.status == "success",
            SandboxPaystackTransaction.refunded >= SandboxPaystackTransaction.amount,
        )
        .values(status="reversed")
    )
    integration = db.session.get(SandboxPaystackIntegration, row.integration_id)
    webhooks.send(integration, "refund.processed", shapes.refund_event(row, tx), tx.reference)
    db.session.commit()
    return "refund processed"
