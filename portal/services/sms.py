"""SMS to customers (one-time codes, notices) through Africa's Talking: queued in the caller's
transaction, sent by a job, settled by AT's delivery reports (services/sms_reports.py).

Guarantees:
- one row per (merchant, dedupe_key): asking again returns the first row, never a second SMS;
- the send job claims the row with one compare-and-set (queued → sending, attempts + 1; or a
  `sending` claim older than SMS_CLAIM_TIMEOUT), so a job run twice, or two workers racing,
  make one call to AT; what the call came to is recorded only on the claim that made it;
- a failure worth retrying puts the row back to queued and raises (RQ retries with backoff);
  the last try leaves it failed and the job a dead letter, which, retried by hand, sends it
  once more; a refusal a person must fix (credentials, sender ID, balance) fails it at once
  with a dead letter; a number that cannot receive (invalid, opted out) fails it, and no more.

The crash window, between AT's 201 and our record of it: the row stays `sending`, and nothing
tells that crash from one before the call (AT takes no idempotency key and cannot be asked what
it sent). We choose at least once: past SMS_CLAIM_TIMEOUT the sweeper enqueues the row again and
it is sent again. A customer may get the same text twice (it is the row's, unchanged), never
none. A call that timed out is retried on the same terms.
"""

import logging
import re
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from portal.extensions import attach_loaded, db, dialect_insert, loaded_row
from portal.models import Merchant, Sms, SmsStatus
from portal.providers.africastalking import AfricasTalkingClient, AtError, AtRecipientRejected, base_url_for
from portal.queueing import Permanent, enqueue
from portal.services import sms_reports
from portal.services.errors import NotConfigured
from portal.services.phones import normalise_kenyan
from portal.services.sweeper import BATCH, each_row, step
from portal.timeutil import utcnow

S = SmsStatus
log = logging.getLogger(__name__)
JOB = "portal.jobs.send_sms"
MAX_TEXT = 1600  # ten parts: longer is not a text message
PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,31}")
DEDUPE_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def queue(merchant_id: int, to: str, message: str, *, purpose: str, dedupe_key: str) -> Sms:
    """Adds the SMS to the caller's transaction (the caller commits) and enqueues its send job
    once that commits. Returns the merchant's existing row with this dedupe_key instead, if
    there is one: a second call never makes a second SMS. `to` is any Kenyan number as people
    type it (stored as 254XXXXXXXXX). Raises InvalidPhone (a ValueError) for another number,
    ValueError for an empty or overlong message, a purpose or a key that is not a short word."""
    number = normalise_kenyan(to)
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_TEXT:
        raise ValueError(f"an SMS is 1 to {MAX_TEXT} characters")
    if not PURPOSE.fullmatch(purpose) or not DEDUPE_KEY.fullmatch(dedupe_key):
        raise ValueError("purpose is a short lowercase word; dedupe_key 1 to 128 printable ASCII characters")
    existing = Sms.get_for_merchant(merchant_id, dedupe_key=dedupe_key)
    if existing is not None:
        return existing
    now = utcnow()
    attrs, row = loaded_row(
        Sms,
        {
            "merchant_id": merchant_id,
            "to": number,
            "message": message,
            "purpose": purpose,
            "dedupe_key": dedupe_key,
            "status": S.QUEUED,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    # A concurrent call may insert first: the unique key decides, and this one finds its row. (No
    # savepoint: on SQLite one that opens the caller's transaction would commit it on release.)
    ident = db.session.execute(
        dialect_insert(Sms)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["merchant_id", "dedupe_key"])
        .returning(Sms.id)
    ).scalar()
    if ident is None:
        return Sms.get_for_merchant(merchant_id, dedupe_key=dedupe_key)
    sms = attach_loaded(Sms, ident, attrs)
    send_later(sms)
    return sms


def send_later(sms: Sms) -> None:
    """The send job, after commit (one waiting or running per SMS; its dead letter names the merchant)."""
    enqueue(JOB, sms.id, queue="sms", job_id=f"sms-send-{sms.id}", meta={"merchant_id": sms.merchant_id})


def at_base_url(username: str) -> str:
    cfg = current_app.config
    if cfg["AT_BASE_URL"]:
        return cfg["AT_BASE_URL"]
    if cfg["SANDBOX"]:
        return cfg["PUBLIC_BASE_URL"] + "/sandbox/africastalking"
    return base_url_for(username)


def client_for(merchant: Merchant) -> tuple[AfricasTalkingClient, str | None]:
    """The client and sender ID the merchant's SMS go out with: its own AT account, else the
    platform's (AT_USERNAME, AT_API_KEY), else in sandbox mode the simulator's. The sender ID
    is the merchant's, else AT_SENDER_ID, else AT's default. Raises NotConfigured."""
    cfg = current_app.config
    if merchant.has_africastalking:
        username, api_key = merchant.at_username, merchant.at_api_key
    elif cfg["AT_USERNAME"] and cfg["AT_API_KEY"]:
        username, api_key = cfg["AT_USERNAME"], cfg["AT_API_KEY"]
    elif cfg["SANDBOX"]:
        username, api_key = "sandbox", cfg["SANDBOX_AT_API_KEY"]
    else:
        raise NotConfigured("SMS need an Africa's Talking username and API key in the settings")
    client = AfricasTalkingClient(at_base_url(username), username, api_key, timeout=cfg["AT_TIMEOUT"])
    return client, merchant.at_sender_id or cfg["AT_SENDER_ID"] or None


def send(sms_id: int, *, by_hand: bool = False, last_try: bool = True) -> str:
    """The send job's work: claims the SMS and sends it. `by_hand`: a dead letter retried by a
    person, which may send a failed SMS again. `last_try`: no retry follows a failure. Raises
    the AtError of a failure worth retrying, or Permanent for one a person must fix."""
    sms = db.session.get(Sms, sms_id)
    if sms is None:
        return "no such SMS"
    attempt = _claim(sms, by_hand)
    if attempt is None:
        return f"not sent: it is {db.session.get(Sms, sms_id).status}"
    try:
        client, sender = client_for(db.session.get(Merchant, sms.merchant_id))
    except NotConfigured as exc:
        _settle(sms.id, attempt, S.FAILED, last_error=str(exc))
        raise Permanent(str(exc)) from exc
    try:
        accepted = client.send("+" + sms.to, sms.message, sender)
    except AtError as exc:
        return _not_sent(sms.id, attempt, exc, last_try)
    recorded = _settle(
        sms.id,
        attempt,
        S.SENT,
        provider_message_id=accepted.message_id[:64],
        provider_status=accepted.status[:32],
        cost=accepted.cost[:32],
        sent_at=utcnow(),
        last_error=None,
    )
    if not recorded:
        return f"sent as {accepted.message_id}, but another claim had taken the SMS"
    sms_reports.replay_orphans(accepted.message_id)  # a report may have beaten this record
    return f"sent as {accepted.message_id}"


def _claim(sms: Sms, by_hand: bool) -> int | None:
    """The attempt number this call may make, or None when the SMS is not to be sent now. Commits."""
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["SMS_CLAIM_TIMEOUT"])
    claimable = [Sms.status == S.QUEUED, and_(Sms.status == S.SENDING, Sms.claimed_at < stale)]
    if by_hand:
        claimable.append(Sms.status == S.FAILED)
    attempt = sms.attempts + 1
    claimed = db.session.execute(
        update(Sms)
        .where(Sms.id == sms.id, Sms.attempts == sms.attempts, or_(*claimable))
        .values(status=S.SENDING, attempts=attempt, claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()  # the claim is on record before AT hears of it (and SQLite's write lock is free)
    return attempt if claimed else None


def _settle(sms_id: int, attempt: int, status: str, **values) -> bool:
    """Records how `attempt` ended, unless another claim has taken the SMS since. Commits."""
    done = db.session.execute(
        update(Sms)
        .where(Sms.id == sms_id, Sms.status == S.SENDING, Sms.attempts == attempt)
        .values(status=status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not done:
        log.warning("SMS %s: attempt %s ended (%s) after another claim took it", sms_id, attempt, status)
    return bool(done)


def _not_sent(sms_id: int, attempt: int, exc: AtError, last_try: bool) -> str:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    if exc.retryable and not last_try:
        _settle(sms_id, attempt, S.QUEUED, last_error=error)
        raise exc
    rejected = isinstance(exc, AtRecipientRejected)
    _settle(sms_id, attempt, S.FAILED, last_error=error, **({"provider_status": exc.status[:32]} if rejected else {}))
    if rejected and exc.blames_recipient:
        return f"not sent: {exc}"  # the number cannot receive it: nothing to retry, nobody to fix it
    if exc.retryable:
        raise exc  # the last try: its dead letter can send it again
    raise Permanent(f"Africa's Talking refused the SMS: {exc}") from exc


@step("sms_unsent")
def resend_unsent(now: datetime) -> int:
    """SMS queued for longer than SMS_UNSENT_AFTER (their job was lost) and SMS whose sending
    claim is older than SMS_CLAIM_TIMEOUT (their worker died): their send job, again."""
    cfg = current_app.config
    rows = db.session.scalars(
        select(Sms)
        .where(
            or_(
                and_(Sms.status == S.QUEUED, Sms.updated_at < now - timedelta(seconds=cfg["SMS_UNSENT_AFTER"])),
                and_(Sms.status == S.SENDING, Sms.claimed_at < now - timedelta(seconds=cfg["SMS_CLAIM_TIMEOUT"])),
            )
        )
        .order_by(Sms.updated_at)
        .limit(BATCH)
    ).all()

    def again(sms: Sms) -> None:
        if sms.status == S.QUEUED:
            sms.updated_at = now  # the next sweep waits SMS_UNSENT_AFTER again
        send_later(sms)

    return each_row(rows, again, _record_failure)


def _record_failure(sms_id: int, exc: Exception) -> None:
    db.session.execute(
        update(Sms)
        .where(Sms.id == sms_id)
        .values(last_error=f"sweeper: {exc.__class__.__name__}: {exc}"[:1000])
        .execution_options(synchronize_session=False)
    )
