"""The Daraja simulator's Transaction Status (reference §8.1): a query by M-Pesa receipt
(TransactionID) or by OriginatorConversationID is acknowledged at once; a job sends the answer
to its ResultURL in the Result envelope. It knows the app's B2C payouts (a payout still waiting
is settled first, so the answer and the payout's own Result always agree), the app's completed
C2B payments, and paid STK prompts to the shortcode queried."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import Row, or_, update

from portal.extensions import db
from portal.models import SandboxApp, SandboxB2CPayment, SandboxC2BPayment, SandboxStatusQuery, SandboxStkRequest
from portal.queueing import enqueue
from portal.sandbox import delivery
from portal.sandbox.daraja import b2c, c2b, ids, initiators
from portal.sandbox.daraja.errors import invalid
from portal.sandbox.daraja.schemas import TransactionStatusRequest
from portal.timeutil import as_nairobi, utcnow

# The reference gives no answer for an unknown transaction; this is the code Daraja uses for an
# unknown original transaction (reversal, reference §8.3).
NOT_FOUND_CODE, NOT_FOUND_DESC = "R000002", "The OriginalTransactionID is invalid."
REASONS = {
    "BusinessPayment": "Business Payment to Customer via API",
    "SalaryPayment": "Salary Payment via API",
    "PromotionPayment": "Promotion Payment via API",
}


def query(asked: TransactionStatusRequest, app: SandboxApp | Row) -> SandboxStatusQuery:
    transaction_id, original = asked.TransactionID, asked.original
    if transaction_id is None and original is None:  # nothing to look for
        raise invalid("TransactionID")
    delay = float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    row = SandboxStatusQuery(
        app_id=app.id,
        originator_conversation_id=ids.legacy_originator_id(),
        conversation_id=ids.conversation_id(),
        credential_ok=initiators.credential_is_valid(app, asked.Initiator, asked.SecurityCredential),
        transaction_id=transaction_id,
        original_conversation_id=original,
        party_a=asked.PartyA,
        identifier_type=asked.IdentifierType,
        remarks=asked.Remarks,
        occasion=asked.Occasion,
        result_url=asked.ResultURL,
        timeout_url=asked.QueueTimeOutURL,
        resolve_at=utcnow() + timedelta(seconds=delay),
    )
    db.session.add(row)
    db.session.flush()
    _schedule(row, delay, job_id=f"sandbox-status-{row.id}")
    db.session.commit()
    return row


def _schedule(row: SandboxStatusQuery, delay: float, job_id: str | None) -> None:
    enqueue("portal.jobs.sandbox_answer_status", row.id, queue="sandbox", job_id=job_id, delay=delay, retry=False)


def answer(query_id: int) -> str:
    """The job: finds what was asked about and sends the answer to the ResultURL, once."""
    row = db.session.get(SandboxStatusQuery, query_id)
    if row is None:
        return "gone"
    if row.answered_at is not None:
        return "answered"
    early = (row.resolve_at - utcnow()).total_seconds()
    if early > 0:  # RQ's scheduler works to the whole second: come back when due
        _schedule(row, early, job_id=None)
        db.session.commit()
        return "not yet"
    if not row.credential_ok:
        code, desc, parameters = 2001, b2c.RESULTS[2001], None
    else:
        found = _find(row)
        if isinstance(found, SandboxB2CPayment):
            b2c.resolve(found)  # a payout still queued is settled as it is asked about
        parameters = None if found is None else _parameters(found, row)
        code, desc = (0, b2c.RESULTS[0]) if found is not None else (NOT_FOUND_CODE, NOT_FOUND_DESC)
    claimed = db.session.execute(
        update(SandboxStatusQuery)
        .where(SandboxStatusQuery.id == row.id, SandboxStatusQuery.answered_at.is_(None))
        .values(answered_at=utcnow(), result_code=str(code))
    ).rowcount
    if not claimed:
        db.session.rollback()
        return "answered"
    result = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": desc,
        "OriginatorConversationID": row.originator_conversation_id,
        "ConversationID": row.conversation_id,
        "TransactionID": ids.receipt() if code == 0 else ids.placeholder_receipt(),
    }
    if parameters is not None:
        result["ResultParameters"] = {"ResultParameter": parameters}
    result["ReferenceData"] = {"ReferenceItem": {"Key": "Occasion", "Value": row.occasion or ""}}
    delivery.deliver(
        row.result_url,
        {"Result": result},
        provider="daraja",
        kind="status_result",
        subject=row.conversation_id,
    )
    db.session.commit()
    return f"answered {code}"


def _find(row: SandboxStatusQuery):
    """The payout, payment or prompt asked about, or None. Failed payouts all share a placeholder
    receipt, so a receipt finds only a paid one; the conversation ids find any."""
    payouts = SandboxB2CPayment.query.filter_by(app_id=row.app_id)
    if row.original_conversation_id is not None:
        wanted = row.original_conversation_id
        return payouts.filter(
            or_(
                SandboxB2CPayment.originator_conversation_id == wanted,
                SandboxB2CPayment.conversation_id == wanted,
            )
        ).first()
    receipt = row.transaction_id
    return (
        payouts.filter_by(transaction_id=receipt, result_code="0").first()
        or SandboxC2BPayment.query.filter_by(app_id=row.app_id, trans_id=receipt, status=c2b.COMPLETED).first()
        or SandboxStkRequest.query.filter_by(shortcode=row.party_a, receipt=receipt, result_code=0).first()
    )


def _stamp(when) -> int:
    return int(as_nairobi(when).strftime("%Y%m%d%H%M%S"))


def _parameters(found, row: SandboxStatusQuery) -> list[dict]:
    app = db.session.get(SandboxApp, row.app_id)
    if isinstance(found, SandboxB2CPayment):
        first, last = ids.customer_name(found.party_b)
        paid = found.result_code == "0"
        values = {
            "DebitPartyName": f"{found.party_a} - {app.name}",
            "CreditPartyName": f"{found.party_b} - {first} {last}",
            "OriginatorConversationID": found.originator_conversation_id,
            "InitiatedTime": _stamp(found.created_at),
            "DebitAccountType": "Utility Account",
            "DebitPartyCharges": "",
            "TransactionReason": None,
            "ReasonType": REASONS[found.command_id],
            "TransactionStatus": "Completed" if paid else "Failed",
            "FinalisedTime": _stamp(found.resolved_at),
            "Amount": float(found.amount),
            "ConversationID": found.conversation_id,
            "ReceiptNo": found.transaction_id,
        }
    else:  # a customer's payment: C2B or STK
        phone = found.msisdn if isinstance(found, SandboxC2BPayment) else found.phone
        first, last = ids.customer_name(phone)
        business = app.name if isinstance(found, SandboxC2BPayment) else (found.business_name or app.name)
        receipt = found.trans_id if isinstance(found, SandboxC2BPayment) else found.receipt
        values = {
            "DebitPartyName": f"{phone} - {first} {last}",
            "CreditPartyName": f"{found.shortcode} - {business}",
            "OriginatorConversationID": "",
            "InitiatedTime": _stamp(found.created_at),
            "DebitAccountType": "MMF Account For Customer",
            "DebitPartyCharges": "",
            "TransactionReason": None,
            "ReasonType": "Pay Bill Online",
            "TransactionStatus": "Completed",
            "FinalisedTime": _stamp(found.resolved_at),
            "Amount": float(found.amount),
            "ConversationID": "",
            "ReceiptNo": receipt,
        }
    # an item with nothing to say has no Value at all, as STK's Balance (reference §3.3)
    return [{"Key": key} if value is None else {"Key": key, "Value": value} for key, value in values.items()]
