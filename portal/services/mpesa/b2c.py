"""B2C payouts: the merchant pays a customer's phone.

A payout is a ledger row of kind b2c with its own words for the states it uses: queued
(pending), sent (processing: Daraja took the request), completed, failed. A timeout from
Daraja's queue is not a failure: the payout is asked about by Transaction Status and
settled by the answer.

Guarantees (never paid twice):
- each attempt has its own OriginatorConversationID, `b2c-<payout id>-<attempt>`, claimed by
  a compare-and-set on `payments.attempts` before Daraja is called;
- an attempt is presumed to have gone through until proven otherwise: Daraja refused it
  synchronously, or could not be reached at all, or Transaction Status says it has no such
  transaction once B2C_IN_DOUBT_SECONDS have passed since it was sent (a request whose answer
  we gave up on may still reach M-Pesa after a first "no such transaction": until then the
  question is asked again). Only then may the next attempt be sent; a retry whose earlier
  attempt is in doubt first asks Transaction Status;
- a result is applied only to the payout its OriginatorConversationID and its URL's token
  both name; a failure of an earlier attempt never fails the payout.
"""

import logging
import re
import secrets
import time
from dataclasses import replace

from sqlalchemy import update

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.providers.daraja_results import DarajaResult, parse_result
from portal.queueing import enqueue
from portal.services import inbox, payout_attempts
from portal.services.links import callback_token, external_url
from portal.services.mpesa.client import daraja_initiator_for, source_problem
from portal.services.transitions import create_payment, current_status, transition
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)
MINIMUM, MAXIMUM = 10, 250_000  # whole shillings per payout (Daraja)
NAMES = {S.PENDING: "queued", S.PROCESSING: "sent", S.COMPLETED: "completed", S.FAILED: "failed"}
ORIGINATOR = re.compile(r"b2c-([0-9]{1,18})-([0-9]{1,6})")
DUPLICATE_ORIGINATOR = "500.002.1001"
INTERNAL_ERROR = "500.003.1001"  # Daraja failed while handling the request: it is in doubt, not refused
SEND_JOB, STATUS_JOB = "portal.jobs.send_payout", "portal.jobs.ask_payout_status"


def name_of(status: str) -> str:
    """The payout's state as merchants read it."""
    return NAMES.get(status, status)


def originator_id(payment_id: int, attempt: int) -> str:
    return f"b2c-{payment_id}-{attempt}"


def new_reference() -> str:
    return "B2C" + secrets.token_hex(8).upper()


def request_payout(merchant: Merchant, **fields) -> Payment:
    """record_payout, committed (the send job goes out then)."""
    payment = record_payout(merchant, **fields)
    db.session.commit()
    return payment


def record_payout(
    merchant: Merchant,
    *,
    phone: str,
    amount: int,
    remarks: str,
    occasion: str | None,
    api: str,
    source: str = "api",
    idempotency_key: str | None = None,
) -> Payment:
    """Records a queued payout whose send job goes out once the caller commits. `amount` is in
    minor units, whole shillings from 10. Raises NotConfigured when the merchant cannot pay out."""
    daraja_initiator_for(merchant)  # NotConfigured before anything is recorded
    if amount % 100 or not MINIMUM <= amount // 100 <= MAXIMUM:
        raise ValueError(f"B2C payouts are whole shillings from {MINIMUM} to {MAXIMUM:,}")
    payment = create_payment(
        source,
        f"payout requested through the {api}",
        merchant_id=merchant.id,
        reference=new_reference(),
        rail="mpesa",
        kind="b2c",
        status=S.PENDING,
        amount=amount,
        currency="KES",
        phone=phone,
        description=remarks,
        account_reference=(occasion or None),
        api=api,
        idempotency_key=idempotency_key,
        attempts=0,
        meta={"cleared": 0},
    )
    send_later(payment.id)
    return payment


def send_later(payment_id: int) -> None:
    """The send job, after commit (one waiting or running per payout)."""
    enqueue(SEND_JOB, payment_id, queue="payouts", job_id=f"payout-send-{payment_id}", meta={"payment_id": payment_id})


def ask_later(payment_id: int) -> None:
    """The Transaction Status job, after commit (one waiting or running per payout)."""
    enqueue(
        STATUS_JOB, payment_id, queue="payouts", job_id=f"payout-status-{payment_id}", meta={"payment_id": payment_id}
    )


def _urls(payment: Payment, attempt: int, result: str, timeout: str) -> dict:
    """Where Daraja answers about one attempt: the endpoints, with the payout, the attempt and a token."""
    args = {"ref": payment.reference, "token": callback_token(payment.reference), "attempt": attempt}
    return {"result_url": external_url(result, **args), "timeout_url": external_url(timeout, **args)}


def send(payment_id: int) -> str:
    """The send job: sends the next attempt of a queued payout, or first asks Transaction
    Status about the last attempt if it may have gone through. Transient failures raise, so
    the job is retried with backoff (and the retry asks first where it must)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.kind != "b2c" or payment.status != S.PENDING:
        return "nothing to send"
    if payment.attempts > payout_attempts.cleared(payment):
        ask_status(payment)
        return f"asking M-Pesa whether attempt {payment.attempts} went through before sending another"
    attempt = payment.attempts + 1
    client = daraja_initiator_for(db.session.get(Merchant, payment.merchant_id))
    originator = originator_id(payment.id, attempt)
    claimed = db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == S.PENDING, Payment.attempts == attempt - 1)
        .values(attempts=attempt, provider_reference=originator, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()  # the attempt is on record before Daraja hears of it
    if not claimed:
        return "another worker is sending this payout"
    db.session.refresh(payment)
    payment.meta = {**(payment.meta or {}), "attempt_sent_at": time.time()}
    db.session.commit()
    try:
        ack = client.b2c_payment(
            originator_conversation_id=originator,
            phone=payment.phone,
            amount=payment.amount // 100,
            remarks=payment.description or "Payout",
            occasion=payment.account_reference or "",
            **_urls(payment, attempt, "daraja_webhooks.b2c_result_alias", "daraja_webhooks.b2c_timeout_alias"),
        )
    except DarajaError as exc:
        if exc.error_code in (DUPLICATE_ORIGINATOR, INTERNAL_ERROR):  # it may have gone through: ask first
            raise
        if exc.retryable:  # spike arrest, quota: not processed
            payout_attempts.clear(payment, attempt, f"Daraja did not process it: {exc.error_code}")
            db.session.commit()
            raise
        payout_attempts.clear(payment, attempt, f"Daraja refused it: {exc.error_code}")
        transition(
            payment,
            S.FAILED,
            "api",
            f"Daraja refused the payout: {exc.error_code} {exc.error_message}",
            current=S.PENDING,
            result_code=exc.error_code[:16],
            result_desc=exc.error_message,
        )
        db.session.commit()
        return f"refused: {exc}"
    except DarajaUnavailable as exc:
        if not exc.maybe_sent:
            payout_attempts.clear(payment, attempt, f"Daraja unreachable: {exc}")
            db.session.commit()
        raise  # retried; where it may have been sent, the retry asks first
    transition(
        payment,
        S.PROCESSING,
        "api",
        f"attempt {attempt} taken by M-Pesa ({originator})",
        current=S.PENDING,
        conversation_id=(ack.conversation_id or None),
    )
    db.session.commit()
    return f"sent attempt {attempt}"


def ask_status(payment: Payment) -> None:
    """Asks Transaction Status about the payout's latest attempt; the answer arrives as a
    result callback (`interpret_status`)."""
    attempt = payment.attempts
    client = daraja_initiator_for(db.session.get(Merchant, payment.merchant_id))
    payment.last_queried_at = utcnow()
    db.session.commit()
    client.transaction_status(
        original_conversation_id=originator_id(payment.id, attempt),
        remarks=f"Payout {payment.reference}",
        **_urls(payment, attempt, "daraja_webhooks.status_result", "daraja_webhooks.status_timeout"),
    )


def ask_status_job(payment_id: int) -> str:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.kind != "b2c" or payment.status in S.FINAL or not payment.attempts:
        return "nothing to ask"
    ask_status(payment)
    return f"asked about attempt {payment.attempts}"


# -- results -------------------------------------------------------------------------


Malformed = inbox.Malformed


def read_result(raw: bytes) -> DarajaResult:
    """Daraja's `{"Result": {...}}` envelope (B2C and Transaction Status), read by the provider
    module's parse_result, with every value we store bounded as its column is."""
    data = inbox.read_json(raw)
    envelope = data.get("Result") if isinstance(data, dict) else None
    code = envelope.get("ResultCode") if isinstance(envelope, dict) else None
    if isinstance(code, bool) or not isinstance(code, (int, str)) or not _short(code):
        raise Malformed("not a Daraja result (Result with a ResultCode)")
    result = parse_result(data)
    return replace(
        result,
        result_code=_short(code),
        result_desc=inbox.clean(result.result_desc, 1000),
        originator_conversation_id=_short(result.originator_conversation_id, 64),
        conversation_id=_short(result.conversation_id, 64),
        transaction_id=_short(result.transaction_id, 32),
    )


def _failure(code: str, desc: str) -> DarajaResult:
    """A failure stated by Transaction Status, as a result of the attempt it is about."""
    return DarajaResult("0", code, desc, None, None, None)


def _short(value, limit: int = 16) -> str | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value).strip()
    return text if text and len(text) <= limit and text.isascii() and text.isprintable() else None


def _payout(item: inbox.Item) -> tuple[Payment | None, int | None, str | None]:
    """The payout and attempt the URL names, or why not."""
    ref, attempt = item.args.get("ref"), item.args.get("attempt")
    if not item.token_valid:
        return None, None, "no valid callback token"
    payment = Payment.query.filter_by(reference=ref, kind="b2c").first()
    if payment is None:
        return None, None, "no payout has this reference"
    if not (isinstance(attempt, str) and attempt.isdigit() and 1 <= int(attempt) <= payment.attempts):
        return payment, None, "no such attempt of this payout"
    problem = source_problem(item.source_ip)
    return (payment, None, problem) if problem else (payment, int(attempt), None)


def _found(payment: Payment | None, result: DarajaResult | None = None) -> dict:
    found = {"provider_id": result.originator_conversation_id if result else None}
    if payment is not None:
        found.update(payment_id=payment.id, merchant_id=payment.merchant_id)
    return found


@inbox.interpreter("daraja", "b2c_result")
def interpret_result(item: inbox.Item) -> inbox.Verdict:
    try:
        result = read_result(item.raw)
    except Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    payment, attempt, problem = _payout(item)
    found = _found(payment, result)
    if problem is None and result.originator_conversation_id != originator_id(payment.id, attempt):
        problem = "its OriginatorConversationID is not the one of the attempt its URL names"
    if problem:
        if payment is not None and payment.attempts and payment.status not in S.FINAL:
            ask_later(payment.id)
        return inbox.Verdict("rejected", f"{problem}; not applied, asking M-Pesa (Transaction Status)", **found)
    return _settle(payment, attempt, result, "callback", found)


def _settle(payment: Payment, attempt: int, result: DarajaResult, source: str, found: dict) -> inbox.Verdict:
    current = current_status(payment.id)
    if result.result_code == "0":
        receipt = result.transaction_id or _short(result.parameters.get("TransactionReceipt"), 32)
        if current == S.COMPLETED:
            if receipt and payment.receipt and receipt != payment.receipt:  # two attempts paid: must never happen
                log.error(
                    "payout %s: attempt %s also paid (%s, already %s)", payment.id, attempt, receipt, payment.receipt
                )
                return inbox.Verdict(
                    "rejected", f"a second payment {receipt}: already paid as {payment.receipt}", **found
                )
            return inbox.Verdict("duplicate", "already completed", status=current, **found)
        if current == S.PENDING:  # the result beat the acknowledgement (or the acknowledgement was lost)
            transition(payment, S.PROCESSING, source, f"attempt {attempt} reached M-Pesa", current=S.PENDING)
            current = S.PROCESSING
        moved = transition(
            payment,
            S.COMPLETED,
            source,
            f"attempt {attempt}: ResultCode 0: {result.result_desc}",
            current=current,
            receipt=receipt,
            result_code="0",
            result_desc=result.result_desc,
            conversation_id=result.conversation_id or payment.conversation_id,
        )
        return inbox.Verdict("applied" if moved else "rejected", f"payout is {current_status(payment.id)}", **found)
    if attempt != payment.attempts:
        return inbox.Verdict("rejected", f"a failure of attempt {attempt}, not the latest: ignored", **found)
    if current == S.FAILED:
        return inbox.Verdict("duplicate", "already failed", status=current, **found)
    moved = transition(
        payment,
        S.FAILED,
        source,
        f"attempt {attempt}: ResultCode {result.result_code}: {result.result_desc}",
        result_code=result.result_code,
        result_desc=result.result_desc,
    )
    return inbox.Verdict("applied" if moved else "rejected", f"payout is {current_status(payment.id)}", **found)


@inbox.interpreter("daraja", "b2c_timeout")
def interpret_timeout(item: inbox.Item) -> inbox.Verdict:
    """Whatever Daraja posts to the QueueTimeOutURL (undocumented): not a failure; ask."""
    payment, attempt, problem = _payout(item)
    if payment is None:
        return inbox.Verdict("rejected", problem or "no payout", **_found(None))
    if payment.status not in S.FINAL:
        ask_later(payment.id)
    what = "noted, asking M-Pesa (Transaction Status)" if not problem else f"{problem}; asking M-Pesa"
    return inbox.Verdict(
        "applied" if not problem else "rejected", f"timeout of attempt {attempt}: {what}", **_found(payment)
    )


@inbox.interpreter("daraja", "status_result")
def interpret_status(item: inbox.Item) -> inbox.Verdict:
    """Transaction Status's answer about one attempt of a payout."""
    try:
        result = read_result(item.raw)
    except Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    payment, attempt, problem = _payout(item)
    found = _found(payment, result)
    if problem:
        return inbox.Verdict("rejected", problem, **found)
    status = str(result.parameters.get("TransactionStatus") or "").strip().lower()
    if result.result_code == "0" and status == "completed":
        paid = replace(
            result,
            originator_conversation_id=originator_id(payment.id, attempt),
            transaction_id=_short(result.parameters.get("ReceiptNo"), 32) or result.transaction_id,
        )
        return _settle(payment, attempt, paid, "query", found)
    if result.result_code == "0" and status:  # M-Pesa knows it and says it did not complete
        failed = _failure(status[:16], f"Transaction Status: {status}")
        return _settle(payment, attempt, failed, "query", found)
    # M-Pesa has no such transaction: this attempt never went through, unless it may still land.
    if payment.status in (S.PENDING, S.PROCESSING) and attempt == payment.attempts:
        wait = payout_attempts.still_in_doubt(payment, "B2C_IN_DOUBT_SECONDS")
        if wait:
            enqueue(STATUS_JOB, payment.id, queue="payouts", delay=wait, meta={"payment_id": payment.id})
            return inbox.Verdict("applied", f"attempt {attempt} not found yet: asking again in {wait:.0f}s", **found)
    if payment.status == S.PENDING and attempt == payment.attempts:
        payout_attempts.clear(payment, attempt, f"Transaction Status: {result.result_code} {result.result_desc}")
        send_later(payment.id)
        return inbox.Verdict("applied", f"attempt {attempt} never went through: sending the next", **found)
    if payment.status == S.PROCESSING and attempt == payment.attempts:
        failed = _failure(result.result_code, f"M-Pesa has no record of it (Transaction Status: {result.result_desc})")
        return _settle(payment, attempt, failed, "query", found)
    return inbox.Verdict("duplicate", f"payout is already {payment.status}", **found)
