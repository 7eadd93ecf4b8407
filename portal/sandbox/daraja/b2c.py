"""The Daraja simulator's B2C (reference §7): payout requests acknowledged at once, then settled
by a job that debits the shortcode's account and sends the Result to the ResultURL, or a
timeout to the QueueTimeOutURL, or nothing, as planned when the request arrived:

- a SecurityCredential that is not the app's initiator password: ResultCode 2001;
- an amount under KES 10: ResultCode 2;
- a recipient ending in 0001: ResultCode 1 (insufficient balance);
- ending in 9999: paid, but the Result is lost (only Transaction Status tells);
- ending in 9998: paid, but a timeout goes to the QueueTimeOutURL instead of the Result;
- anything else: paid, unless the shortcode's account holds less (ResultCode 1).
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SandboxApp, SandboxB2CPayment
from portal.queueing import enqueue
from portal.sandbox import delivery
from portal.sandbox.daraja import accounts, ids, initiators
from portal.sandbox.daraja.errors import SimError, invalid
from portal.sandbox.daraja.schemas import B2cRequest
from portal.timeutil import as_nairobi, utcnow

MINIMUM = 10  # KES (reference §9.5)
PAID, INSUFFICIENT, BELOW_MINIMUM, BAD_INITIATOR = "paid", "insufficient", "below_minimum", "bad_initiator"
LOST, QUEUE_TIMEOUT = "lost", "queue_timeout"  # paid, and nobody is told (or only of a timeout)
SUFFIXES = {"0001": INSUFFICIENT, "9999": LOST, "9998": QUEUE_TIMEOUT}
CODES = {INSUFFICIENT: 1, BELOW_MINIMUM: 2, BAD_INITIATOR: 2001}
RESULTS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule: less than the minimum transaction amount.",
    2001: "The initiator information is invalid.",
}
ACCEPTED = "Accept the service request successfully."
# What Daraja sends to the QueueTimeOutURL is undocumented (reference §7.3): a Result envelope
# with ResultCode 26, "System busy", the closest code it documents.
TIMEOUT_CODE, TIMEOUT_DESC = 26, "System busy. The request timed out in the queue."
INTERNAL_RESULT_URL = "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit"
WORKING_ACCOUNT_FUNDS = 900000.00  # the B2C working account is not modelled: a fixed figure


def pay(asked: B2cRequest, app: SandboxApp | Row, version: str) -> SandboxB2CPayment:
    """Records a payout request (v3 requires OriginatorConversationID, unique per app); its
    outcome is planned here and applied by resolve_and_call_back."""
    originator = asked.OriginatorConversationID if version == "v3" else None
    if version == "v3" and originator is None:
        raise invalid("OriginatorConversationID")
    if originator is not None and _taken(app, originator):
        raise _duplicate()
    credential_ok = initiators.credential_is_valid(app, asked.InitiatorName, asked.SecurityCredential)
    amount, party_b = asked.Amount, asked.PartyB
    delay = float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    payout = SandboxB2CPayment(
        app_id=app.id,
        version=version,
        originator_conversation_id=originator or ids.legacy_originator_id(),
        conversation_id=ids.conversation_id(),
        command_id=asked.CommandID,
        amount=amount,
        party_a=asked.PartyA,
        party_b=party_b,
        remarks=asked.Remarks,
        occasion=asked.occasion,
        result_url=asked.ResultURL,
        timeout_url=asked.QueueTimeOutURL,
        planned=plan(amount, party_b, credential_ok),
        resolve_at=utcnow() + timedelta(seconds=delay),
    )
    db.session.add(payout)
    try:
        db.session.flush()
    except IntegrityError:  # the same OriginatorConversationID, sent twice at once
        db.session.rollback()
        raise _duplicate() from None
    _schedule(payout, delay, job_id=f"sandbox-b2c-{payout.id}")
    db.session.commit()
    return payout


def _taken(app: SandboxApp | Row, originator: str) -> bool:
    query = select(SandboxB2CPayment.id).where(
        SandboxB2CPayment.app_id == app.id, SandboxB2CPayment.originator_conversation_id == originator
    )
    return db.session.execute(query.limit(1)).first() is not None


def _duplicate() -> SimError:
    return SimError(500, "500.002.1001", "Duplicate OriginatorConversationID.")


def plan(amount: int, party_b: str, credential_ok: bool) -> str:
    if not credential_ok:
        return BAD_INITIATOR
    if amount < MINIMUM:
        return BELOW_MINIMUM
    return next((outcome for suffix, outcome in SUFFIXES.items() if party_b.endswith(suffix)), PAID)


def _schedule(payout: SandboxB2CPayment, delay: float, job_id: str | None) -> None:
    enqueue("portal.jobs.sandbox_resolve_b2c", payout.id, queue="sandbox", job_id=job_id, delay=delay, retry=False)


def resolve(payout: SandboxB2CPayment) -> bool:
    """Settles an open payout as planned, once: the close is one conditional UPDATE, and the
    debit happens in the same transaction only for the one that closed it. False if closed."""
    if not payout.is_open:
        return False
    now = utcnow()
    closed = db.session.execute(
        update(SandboxB2CPayment)
        .where(SandboxB2CPayment.id == payout.id, SandboxB2CPayment.resolved_at.is_(None))
        .values(resolved_at=now)
    ).rowcount
    if not closed:
        db.session.rollback()
        db.session.refresh(payout)
        return False
    code, balance = CODES.get(payout.planned, 0), None
    if code == 0:
        balance = accounts.debit(payout.party_a, payout.amount)
        if balance is None:
            code = 1
    payout.resolved_at = now
    payout.result_code, payout.result_desc = str(code), RESULTS[code]
    payout.transaction_id = ids.receipt() if code == 0 else ids.placeholder_receipt()
    payout.balance_after_cents = balance if balance is not None else accounts.balance(payout.party_a)
    db.session.commit()
    return True


def resolve_and_call_back(payout_id: int) -> str:
    """The job: settles the payout once its time has come (or earlier, if a Transaction Status
    query asked first) and hands its Result, or timeout, to delivery once."""
    payout = db.session.get(SandboxB2CPayment, payout_id)
    if payout is None:
        return "gone"
    early = (payout.resolve_at - utcnow()).total_seconds()
    if payout.is_open and early > 0:  # RQ's scheduler works to the whole second: come back when due
        _schedule(payout, early, job_id=None)
        db.session.commit()
        return "not yet"
    resolve(payout)
    if payout.planned == LOST:
        return "no callback"
    copies = delivery.copies()
    claimed = db.session.execute(
        update(SandboxB2CPayment)
        .where(SandboxB2CPayment.id == payout.id, SandboxB2CPayment.callbacks_sent == 0)
        .values(callbacks_sent=copies)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return "no callback"
    timed_out = payout.planned == QUEUE_TIMEOUT
    delivery.deliver(
        payout.timeout_url if timed_out else payout.result_url,
        timeout_body(payout) if timed_out else result_body(payout),
        provider="daraja",
        kind="b2c_timeout" if timed_out else "b2c_result",
        subject=payout.conversation_id,
        copies=copies,
    )
    db.session.commit()
    return f"{copies} {'timeout' if timed_out else 'result'}(s) queued"


def _envelope(payout: SandboxB2CPayment, code: int, desc: str, result_type: int = 0) -> dict:
    return {
        "ResultType": result_type,
        "ResultCode": code,
        "ResultDesc": desc,
        "OriginatorConversationID": payout.originator_conversation_id,
        "ConversationID": payout.conversation_id,
        "TransactionID": payout.transaction_id,
    }


def result_body(payout: SandboxB2CPayment) -> dict:
    """The Result (reference §7.3): ResultParameters only when paid."""
    code = int(payout.result_code)
    result = _envelope(payout, code, payout.result_desc)
    if code == 0:
        first, last = ids.customer_name(payout.party_b)
        balance = payout.balance_after_cents / 100
        parameters = {
            "TransactionAmount": payout.amount,
            "TransactionReceipt": payout.transaction_id,
            "ReceiverPartyPublicName": f"{payout.party_b} - {first} {last}",
            "TransactionCompletedDateTime": as_nairobi(payout.resolved_at).strftime("%d.%m.%Y %H:%M:%S"),
            "B2CUtilityAccountAvailableFunds": balance,
            "B2CWorkingAccountAvailableFunds": WORKING_ACCOUNT_FUNDS,
            "B2CRecipientIsRegisteredCustomer": "Y",
            "B2CChargesPaidAccountAvailableFunds": 0.00,
        }
        result["ResultParameters"] = {"ResultParameter": [{"Key": k, "Value": v} for k, v in parameters.items()]}
    result["ReferenceData"] = {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": INTERNAL_RESULT_URL}}
    return {"Result": result}


def timeout_body(payout: SandboxB2CPayment) -> dict:
    result = _envelope(payout, TIMEOUT_CODE, TIMEOUT_DESC, result_type=1)
    result["TransactionID"] = ids.placeholder_receipt()  # the receipt is not told here
    result["ReferenceData"] = {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": INTERNAL_RESULT_URL}}
    return {"Result": result}
