"""Water OTPs: the six-digit code that lets a paid customer dispense their liters once, at one
station.

A code is drawn from `secrets` and only its HMAC (under OTP_HMAC_KEY) is stored: it is shown
once (the SMS, or the answer of a manual issue) and never again. Every change of an OTP is one
conditional UPDATE, so two stations racing to verify one code, or wrong codes typed at once,
resolve exactly once: one station wins; the attempts are counted to the limit and no further.

    active ──verify──▶ in_progress ──complete──▶ used
      │ └─ wrong codes, the last one allowed ──▶ blocked
      └─ past its expiry ──▶ expired

Issuing again (a merchant's manual issue) replaces the code of an OTP not yet verified.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Otp, OtpStatus, Payment, PaymentStatus, Station
from portal.queueing import enqueue
from portal.services import sweeper
from portal.services.mpesa.sweeps import record_failure
from portal.services.transitions import Transition, subscribe
from portal.timeutil import utcnow

S = OtpStatus
log = logging.getLogger(__name__)
API = "water"  # the dialect whose completed payments get an OTP
ISSUE_JOB = "portal.jobs.water_issue_otp"
MISSING_AFTER = 60  # seconds after completion when the sweeper re-sends a lost issuing job
MISSING_WITHIN = timedelta(days=1)  # ... for payments completed this recently (older ones are for a person)


class OtpRefused(Exception):
    """Why an OTP could not be issued, verified or completed: `status` is the HTTP status the
    water document gives the case, `error` its error code, `message` words for the customer."""

    def __init__(self, status: int, error: str, message: str, otp: Otp | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.otp = status, error, message, otp


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def digest(code: str) -> str:
    key = current_app.config["OTP_HMAC_KEY"].encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def liters_paid(payment: Payment) -> int:
    return int((payment.meta or {}).get("liters") or 0)


def otp_of(payment: Payment) -> Otp | None:
    return db.session.execute(select(Otp).where(Otp.payment_id == payment.id)).scalar()


# -- issuing --------------------------------------------------------------------------------------
def issue(payment: Payment, liters: int | None = None) -> tuple[Otp, str]:
    """A new code for a completed payment, and its OTP: created, or, if one exists and has not
    been verified (active, expired or blocked), given the new code, a fresh expiry and its
    attempts back. The caller commits; the code is in no row."""
    if payment.status != PaymentStatus.COMPLETED:
        raise OtpRefused(400, "TRANSACTION_NOT_COMPLETED", "Transaction not completed")
    paid = liters_paid(payment)
    liters = paid if liters is None else liters
    if not 1 <= liters <= paid:
        raise OtpRefused(400, "INVALID_LITERS", f"Liters must be between 1 and the {paid} paid for")
    code, now = new_code(), utcnow()
    fresh = dict(
        code_hmac=digest(code),
        liters=liters,
        status=S.ACTIVE,
        attempts=0,
        max_attempts=current_app.config["OTP_MAX_ATTEMPTS"],
        expires_at=now + timedelta(minutes=current_app.config["OTP_EXPIRY_MINUTES"]),
        station_id=None,
        updated_at=now,
    )
    for _ in range(3):  # a concurrent issue may create or replace it between our read and write
        otp = otp_of(payment)
        if otp is None:
            otp = Otp(merchant_id=payment.merchant_id, payment_id=payment.id, issued=1, created_at=now, **fresh)
            try:
                with db.session.begin_nested():  # the unique payment_id decides between two creators
                    db.session.add(otp)
            except IntegrityError:
                continue
            return otp, code
        if otp.status in (S.IN_PROGRESS, S.USED):
            raise OtpRefused(409, "OTP_ALREADY_USED", "The OTP of this transaction has already been used", otp)
        replaced = db.session.execute(
            update(Otp)
            .where(Otp.id == otp.id, Otp.issued == otp.issued, Otp.status.in_((S.ACTIVE, S.EXPIRED, S.BLOCKED)))
            .values(issued=Otp.issued + 1, **fresh)
            .execution_options(synchronize_session=False)
        ).rowcount
        if replaced:
            db.session.refresh(otp)
            return otp, code
        db.session.expire(otp)
    raise OtpRefused(409, "OTP_BUSY", "The OTP is being issued by another request; try again")


def issue_after_completion(payment_id: int) -> str:
    """The job: a completed water payment's first code, sent to the payer by SMS. Safe to run
    twice: a payment that has an OTP gets nothing more (the SMS belongs to the first run)."""
    from portal.services import sms

    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.api != API or payment.status != PaymentStatus.COMPLETED:
        return "not a completed water payment"
    if otp_of(payment) is not None:
        return "already issued"
    try:
        otp, code = issue(payment)
    except OtpRefused as refused:
        log.warning("no OTP for water payment %s: %s", payment.reference, refused.message)
        return refused.error
    minutes = current_app.config["OTP_EXPIRY_MINUTES"]
    if payment.phone:
        sms.queue(
            payment.merchant_id,
            payment.phone,
            f"Your water code is {code} for {otp.liters} L ({payment.reference}). "
            f"Enter it at the station within {minutes} minutes.",
            purpose="otp",
            dedupe_key=f"otp-{otp.id}-{otp.issued}",
        )
    db.session.commit()
    return "issued"


def _on_transition(t: Transition) -> None:
    if t.to_status == PaymentStatus.COMPLETED and t.api == API:
        enqueue(ISSUE_JOB, t.payment_id, job_id=f"water-otp-{t.payment_id}", meta={"payment_id": t.payment_id})


subscribe(_on_transition)


# -- at the station ---------------------------------------------------------------------------
def effective_status(otp: Otp, now: datetime | None = None) -> str:
    """The status a person should see: an active code past its expiry is expired, sweeper or not."""
    if otp.status == S.ACTIVE and otp.expires_at <= (now or utcnow()):
        return S.EXPIRED
    return otp.status


def _refusal(otp: Otp, station: Station, now: datetime) -> OtpRefused | None:
    """Why `station` cannot use `otp` now, whatever code it was given; None if it can."""
    status = effective_status(otp, now)
    elsewhere = otp.station_id is not None and otp.station_id != station.id
    if status == S.IN_PROGRESS and elsewhere:
        return OtpRefused(409, "OTP_IN_USE", "OTP is in use at a different station", otp)
    if elsewhere:
        return OtpRefused(403, "OTP_LOCKED_TO_STATION", "OTP is locked to a different station", otp)
    if status == S.USED:
        return OtpRefused(400, "OTP_ALREADY_USED", "This OTP has already been used", otp)
    if status == S.BLOCKED:
        return OtpRefused(400, "OTP_BLOCKED", "Too many wrong codes: this OTP is blocked. Ask for a new one.", otp)
    if status == S.EXPIRED:
        return OtpRefused(400, "OTP_EXPIRED", "This OTP has expired. Ask for a new one.", otp)
    return None


def _the_otp(payment: Payment) -> Otp:
    otp = otp_of(payment)
    if otp is None:
        raise OtpRefused(404, "OTP_NOT_FOUND", "OTP not found")
    return otp


def verify(payment: Payment, station: Station, code: str) -> Otp:
    """Checks `code` for the payment's OTP at `station` and locks it there (in_progress).
    A wrong code counts one attempt; the last one allowed blocks the OTP. Verifying again at
    the station that holds it answers as the first time (a kiosk may resend). Commits."""
    otp, now = _the_otp(payment), utcnow()
    refused = _refusal(otp, station, now)
    if refused is not None:
        raise refused
    if not hmac.compare_digest(otp.code_hmac, digest(code)):
        _count_wrong_code(otp, station, now)
    if otp.status == S.IN_PROGRESS:  # already ours (_refusal let it through)
        return otp
    locked = db.session.execute(
        update(Otp)
        .where(Otp.id == otp.id, Otp.status == S.ACTIVE, Otp.expires_at > now)
        .values(status=S.IN_PROGRESS, station_id=station.id, verified_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(otp)
    if not locked and not (otp.status == S.IN_PROGRESS and otp.station_id == station.id):
        raise _refusal(otp, station, utcnow()) or OtpRefused(409, "OTP_IN_USE", "OTP is in use", otp)
    return otp


def _count_wrong_code(otp: Otp, station: Station, now: datetime) -> None:
    """One statement: one more attempt, and blocked at the limit; then the refusal to answer."""
    counted = db.session.execute(
        update(Otp)
        .where(Otp.id == otp.id, Otp.status == S.ACTIVE)
        .values(
            attempts=Otp.attempts + 1,
            status=case((Otp.attempts + 1 >= Otp.max_attempts, S.BLOCKED), else_=Otp.status),
            updated_at=now,
        )
        .returning(Otp.attempts, Otp.max_attempts, Otp.status)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    db.session.refresh(otp)
    if counted is None:  # it changed under us: answer by what it is now
        raise _refusal(otp, station, utcnow()) or OtpRefused(400, "INVALID_OTP", "Invalid OTP", otp)
    attempts, most, status = counted
    if status == S.BLOCKED:
        raise OtpRefused(400, "OTP_BLOCKED", "Invalid OTP. Too many wrong codes: this OTP is now blocked.", otp)
    left = most - attempts
    raise OtpRefused(400, "INVALID_OTP", f"Invalid OTP. {left} attempt{'s' if left != 1 else ''} remaining", otp)


def complete(payment: Payment, station: Station) -> Otp:
    """Dispensing finished at the station that holds the OTP: used. Again: the same answer. Commits."""
    otp, now = _the_otp(payment), utcnow()
    db.session.execute(
        update(Otp)
        .where(Otp.id == otp.id, Otp.status == S.IN_PROGRESS, Otp.station_id == station.id)
        .values(status=S.USED, used_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(otp)
    if otp.status == S.USED and otp.station_id == station.id:
        return otp
    refused = _refusal(otp, station, now)
    raise refused or OtpRefused(409, "OTP_NOT_VERIFIED", "The OTP has not been verified at this station", otp)


# -- what the APIs show -----------------------------------------------------------------------
def pulses(otp: Otp, station: Station) -> int:
    return otp.liters * station.pulses_per_liter


@dataclass(frozen=True)
class View:
    status: str
    attempts: int
    max_attempts: int
    remaining_attempts: int
    liters: int
    expires_at: datetime
    station_code: str | None


def view(otp: Otp) -> View:
    status = effective_status(otp)
    return View(
        status=status,
        attempts=otp.attempts,
        max_attempts=otp.max_attempts,
        remaining_attempts=max(otp.max_attempts - otp.attempts, 0) if status == S.ACTIVE else 0,
        liters=otp.liters,
        expires_at=otp.expires_at,
        station_code=otp.station.code if otp.station_id else None,
    )


def can_use(otp: Otp, station: Station) -> bool:
    return _refusal(otp, station, utcnow()) is None and otp.status == S.ACTIVE


# -- sweeper steps ----------------------------------------------------------------------------
@sweeper.step("otps_expired")
def expire(now: datetime) -> int:
    """Active codes past their expiry become expired."""
    return _move_each((Otp.status == S.ACTIVE, Otp.expires_at <= now), status=S.EXPIRED, updated_at=now)


@sweeper.step("otps_dispensed")
def finish_dispensing(now: datetime) -> int:
    """A station that verified a code and never said it finished (it crashed, lost power):
    after OTP_DISPENSE_TIMEOUT the code is used, since the station was told to dispense."""
    before = now - timedelta(seconds=current_app.config["OTP_DISPENSE_TIMEOUT"])
    due = (Otp.status == S.IN_PROGRESS, Otp.verified_at <= before)
    return _move_each(due, status=S.USED, used_at=now, updated_at=now)


def _move_each(conditions: tuple, **values) -> int:
    """A batch of the OTPs that meet `conditions`, each moved by one conditional UPDATE (so a
    code verified or re-issued meanwhile is left alone); a row that fails is logged and skipped."""
    due = db.session.execute(select(Otp.id).where(*conditions).order_by(Otp.id).limit(sweeper.BATCH)).scalars()

    def handle(ident: int) -> bool:
        return bool(db.session.execute(update(Otp).where(Otp.id == ident, *conditions).values(**values)).rowcount)

    def record(ident: int, exc: Exception) -> None:
        log.error("could not move OTP %s to %s: %s", ident, values["status"], exc)

    return sweeper.each_row(list(due), handle, record)


@sweeper.step("otps_missing")
def issue_missing(now: datetime) -> int:
    """Completed water payments with no OTP a while after completion: their issuing job was
    lost (Redis may lose everything), so it is sent again. The job issues at most once."""
    before = now - timedelta(seconds=MISSING_AFTER)
    due = db.session.execute(
        select(Payment.id)
        .outerjoin(Otp, Otp.payment_id == Payment.id)
        .where(
            Payment.api == API,
            Payment.status == PaymentStatus.COMPLETED,
            Payment.completed_at <= before,
            Payment.completed_at > now - MISSING_WITHIN,
            Otp.id.is_(None),
        )
        .order_by(Payment.id)
        .limit(sweeper.BATCH)
    ).scalars()

    def handle(payment_id: int) -> None:
        enqueue(ISSUE_JOB, payment_id, job_id=f"water-otp-{payment_id}", meta={"payment_id": payment_id})

    return sweeper.each_row(list(due), handle, record_failure)
