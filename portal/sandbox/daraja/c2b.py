"""The Daraja simulator's C2B (reference §6): URLs registered per app and shortcode, and
simulated customer payments. A payment's job POSTs the validation request to the ValidationURL;
when that answer is known (delivery's on_done), an accepted payment, or one whose validation
could not be had while ResponseType is Completed, is credited to the shortcode and confirmed to
the ConfirmationURL. Every request goes out through the delivery module over real HTTP."""

import hashlib
import json
from datetime import timedelta

from flask import current_app
from sqlalchemy import Row, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from portal.extensions import db
from portal.models import SandboxApp, SandboxC2BPayment, SandboxC2BRegistration, SandboxDelivery
from portal.queueing import enqueue
from portal.sandbox import delivery
from portal.sandbox.daraja import accounts, ids
from portal.sandbox.daraja.errors import invalid, request_id_like_daraja
from portal.sandbox.daraja.schemas import C2bRegisterRequest, C2bSimulateRequest
from portal.timeutil import as_nairobi, utcnow

COMMANDS = {"CustomerPayBillOnline": "Pay Bill", "CustomerBuyGoodsOnline": "Buy Goods"}
PENDING, VALIDATING, COMPLETED, REJECTED, CANCELLED = "pending", "validating", "completed", "rejected", "cancelled"


def register(asked: C2bRegisterRequest, app: SandboxApp | Row, version: str) -> SandboxC2BRegistration:
    """Registers (or, as Daraja's sandbox allows, re-registers) `app`'s URLs for a shortcode."""
    shortcode = asked.ShortCode
    values = dict(
        version=version,
        response_type=asked.ResponseType,
        confirmation_url=asked.ConfirmationURL,
        validation_url=asked.ValidationURL,
        updated_at=utcnow(),
    )
    for _ in range(2):  # the second round updates the row a concurrent first registration made
        row = SandboxC2BRegistration.query.filter_by(app_id=app.id, shortcode=shortcode).first()
        if row is None:
            row = SandboxC2BRegistration(app_id=app.id, shortcode=shortcode, **values)
            db.session.add(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        try:
            db.session.commit()
            return row
        except IntegrityError:
            db.session.rollback()
    raise AssertionError("a registration row both exists and does not")


def simulate(asked: C2bSimulateRequest, app: SandboxApp | Row) -> SandboxC2BPayment:
    """A customer pays `Amount` to a shortcode; what `app` registered for it decides who is told."""
    shortcode, command = asked.ShortCode, asked.CommandID
    # The account typed by the customer: required for a paybill, absent (or null) for a till.
    if asked.BillRefNumber is None and command == "CustomerPayBillOnline":
        raise invalid("BillRefNumber")
    registration = SandboxC2BRegistration.query.filter_by(app_id=app.id, shortcode=shortcode).first()
    delay = float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    payment = SandboxC2BPayment(
        app_id=app.id,
        trans_id=ids.receipt(),
        originator_conversation_id=request_id_like_daraja(),
        shortcode=shortcode,
        command_id=command,
        amount=asked.Amount,
        msisdn=asked.Msisdn,
        bill_ref=asked.BillRefNumber,
        status=PENDING,
        resolve_at=utcnow() + timedelta(seconds=delay),
    )
    if registration is not None:
        payment.version, payment.response_type = registration.version, registration.response_type
        payment.validation_url, payment.confirmation_url = registration.validation_url, registration.confirmation_url
    db.session.add(payment)
    db.session.flush()
    _schedule(payment, delay, job_id=f"sandbox-c2b-{payment.id}")
    db.session.commit()
    return payment


def _schedule(payment: SandboxC2BPayment, delay: float, job_id: str | None) -> None:
    enqueue("portal.jobs.sandbox_c2b_pay", payment.id, queue="sandbox", job_id=job_id, delay=delay, retry=False)


def pay(payment_id: int) -> str:
    """The job: once the payment's time has come, asks the ValidationURL (or, with no URLs
    registered, completes it silently, as Daraja does). Safe to run twice."""
    payment = db.session.get(SandboxC2BPayment, payment_id)
    if payment is None:
        return "gone"
    if payment.status != PENDING:
        return payment.status
    early = (payment.resolve_at - utcnow()).total_seconds()
    if early > 0:  # RQ's scheduler works to the whole second: come back when due
        _schedule(payment, early, job_id=None)
        db.session.commit()
        return "not yet"
    if payment.confirmation_url is None:
        _finish(payment, PENDING, COMPLETED, "no URLs registered: completed without telling anyone")
        db.session.commit()
        return COMPLETED
    if not _move(payment, PENDING, VALIDATING):
        db.session.rollback()
        return "taken"
    delivery.deliver(
        payment.validation_url,
        payload(payment, confirmation=False),
        provider="daraja",
        kind="c2b_validation",
        subject=payment.trans_id,
        copies=1,  # one answer decides
        timeout=float(current_app.config["SANDBOX_C2B_VALIDATION_TIMEOUT"]),
        on_done="portal.jobs.sandbox_c2b_validated",
    )
    db.session.commit()
    return "validating"


def validated(delivery_id: int) -> str:
    """The job run once the validation request is answered or has failed: the payment is
    accepted, rejected, or decided by the registered ResponseType. Runs its decision once."""
    sent = db.session.get(SandboxDelivery, delivery_id)
    if sent is None or sent.kind != "c2b_validation":
        return "gone"
    payment = SandboxC2BPayment.query.filter_by(trans_id=sent.subject).first()
    if payment is None or payment.status != VALIDATING:
        return "done"
    verdict, value = _verdict(sent)
    if verdict == "accepted":
        payment.third_party_trans_id = value
        outcome, detail = COMPLETED, "accepted by the validation URL"
    elif verdict == "rejected":
        outcome, detail = REJECTED, f"rejected by the validation URL ({value})"
    else:
        default = COMPLETED if payment.response_type == "Completed" else CANCELLED
        outcome, detail = default, f"no answer from the validation URL ({value}): ResponseType {payment.response_type}"
    if not _finish(payment, VALIDATING, outcome, detail):
        db.session.rollback()
        return "done"
    db.session.commit()
    return outcome


def _verdict(sent: SandboxDelivery) -> tuple[str | None, str | None]:
    """("accepted", ThirdPartyTransID) | ("rejected", ResultCode) | (None, why there is no answer)."""
    if sent.status != delivery.DELIVERED:
        return None, sent.last_outcome
    try:
        answer = json.loads(sent.answer or "")
    except ValueError:
        return None, "an answer that is not JSON"
    code = answer.get("ResultCode") if isinstance(answer, dict) else None
    if isinstance(code, bool) or not isinstance(code, str | int):
        return None, "an answer without a ResultCode"
    if str(code) != "0":
        return "rejected", str(code)[:32]
    third_party = answer.get("ThirdPartyTransID")
    keep = isinstance(third_party, str) and third_party.isprintable() and len(third_party) <= 64
    return "accepted", third_party if keep else None


def _move(payment: SandboxC2BPayment, old: str, new: str, **values) -> bool:
    moved = db.session.execute(
        update(SandboxC2BPayment)
        .where(SandboxC2BPayment.id == payment.id, SandboxC2BPayment.status == old)
        .values(status=new, **values)
    ).rowcount
    if moved:  # the object says what the row now holds, without an UPDATE of its own
        for name, value in dict(values, status=new).items():
            set_committed_value(payment, name, value)
    return bool(moved)


def _finish(payment: SandboxC2BPayment, old: str, outcome: str, detail: str) -> bool:
    """Closes the payment once; a completed one is credited to the shortcode and confirmed."""
    if not _move(payment, old, outcome, detail=detail[:255], resolved_at=utcnow()):
        return False
    if outcome == COMPLETED:
        payment.balance_after_cents = accounts.credit(payment.shortcode, payment.amount)
        if payment.confirmation_url is not None:
            delivery.deliver(
                payment.confirmation_url,
                payload(payment, confirmation=True),
                provider="daraja",
                kind="c2b_confirmation",
                subject=payment.trans_id,
            )
    return True


def payload(payment: SandboxC2BPayment, confirmation: bool) -> dict:
    """Daraja's validation and confirmation body (reference §6.2): every value a string."""
    first, _last = ids.customer_name(payment.msisdn)
    return {
        "TransactionType": COMMANDS[payment.command_id],
        "TransID": payment.trans_id,
        "TransTime": as_nairobi(payment.created_at).strftime("%Y%m%d%H%M%S"),
        "TransAmount": f"{payment.amount}.00",
        "BusinessShortCode": payment.shortcode,
        "BillRefNumber": payment.bill_ref or "",
        "InvoiceNumber": "",
        "OrgAccountBalance": accounts.shillings(payment.balance_after_cents) if confirmation else "",
        "ThirdPartyTransID": (payment.third_party_trans_id or "") if confirmation else "",
        "MSISDN": shown_msisdn(payment.msisdn, payment.version),
        "FirstName": first,
        "MiddleName": "",
        "LastName": "",
    }


def shown_msisdn(msisdn: str, version: str | None) -> str:
    """v2: masked, 2547 ***** 149; v1: the SHA-256 hex of the 254... number (reference §6.1)."""
    if version == "v1":
        return hashlib.sha256(msisdn.encode()).hexdigest()
    return f"{msisdn[:4]} ***** {msisdn[-3:]}"
