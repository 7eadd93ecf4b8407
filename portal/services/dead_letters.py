"""Dead letters: filing a job that failed for good (called by the worker's failure hook in
portal/queueing.py), retrying one by hand, and the figures a merchant sees.

Guarantees: one open row per job (function and arguments), however often it fails; a retry
is one compare-and-set on the row, so two retries at once enqueue the job once; a retry whose
job Redis lost goes back to `failed` (sweeper step), so no row waits for nothing.
"""

import hashlib
import json
import logging
import traceback as tb_module
from datetime import datetime, timedelta

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import DeadLetter, DeadLetterStatus, Payment
from portal.queueing import Permanent, enqueue, get_redis
from portal.services.sweeper import BATCH, step
from portal.timeutil import utcnow

log = logging.getLogger(__name__)
S = DeadLetterStatus
MESSAGE_LIMIT = 1000  # characters of an exception's message kept
TRACEBACK_LIMIT = 8000  # characters of a traceback kept: its end, where the error is
LOST_AFTER = timedelta(seconds=60)  # a retry with no live job this long after it was asked for was lost
LIVE = ("queued", "scheduled", "started", "deferred")
ABANDONED = "the worker running it stopped before it finished"


class RetryRefused(Exception):
    """A dead letter that cannot be retried now; the message says why."""


class AlreadyResolved(RetryRefused):
    pass


class RetryInProgress(RetryRefused):
    pass


class NotRetryable(RetryRefused):
    pass


# -- filing (the worker's failure hook) ---------------------------------------------------
def record(job, exc_type, exc, tb, tries: int) -> None:
    """Files `job`, failed for good after `tries` attempts with `exc`: a new row, or the job's
    open row (its retry's, or the same function and arguments) brought up to date. Commits."""
    db.session.rollback()  # what the failed job left unfinished goes (SQLite's write lock with it)
    args = _jsonable(list(job.args or ()))
    meta = job.meta or {}
    error_type, message = describe(exc_type, exc)
    trace = "".join(tb_module.format_exception(exc_type, exc, tb)) if tb is not None else ""
    fingerprint = hashlib.sha256(json.dumps([job.func_name, args], sort_keys=True).encode()).hexdigest()
    now = utcnow()
    changes = {
        "job_id": job.id[:128],
        "error_type": clean(error_type, 255),
        "error": clean(message, MESSAGE_LIMIT),
        "traceback": clean(trace, TRACEBACK_LIMIT, keep_end=True) or None,
        "failed_at": now,
        "status": S.FAILED,
        "attempts": DeadLetter.attempts + tries,
    }
    log.warning("job %s (%s) failed for good after %s attempt(s): %s", job.id, job.func_name, tries, changes["error"])
    open_row = DeadLetter.status != S.RESOLVED
    if meta.get("dead_letter_id"):
        mine = (DeadLetter.id == int(meta["dead_letter_id"]), open_row)
    else:
        mine = (DeadLetter.fingerprint == fingerprint, open_row)
    if _update(mine, changes):
        db.session.commit()
        return
    payment_id, merchant_id = _concerns(meta)
    row = DeadLetter(
        merchant_id=merchant_id,
        payment_id=payment_id,
        func=job.func_name[:255],
        args=args,
        queue=(job.origin or "default")[:32],
        fingerprint=fingerprint,
        created_at=now,
        **{**changes, "attempts": tries},
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same job failed in another worker a moment ago: join its row
        db.session.rollback()
        _update((DeadLetter.fingerprint == fingerprint, open_row), changes)
        db.session.commit()


def _update(where: tuple, changes: dict) -> bool:
    statement = update(DeadLetter).where(*where).values(**changes).execution_options(synchronize_session=False)
    return db.session.execute(statement).rowcount > 0


def _concerns(meta: dict) -> tuple[int | None, int | None]:
    """The payment and merchant a job concerns: the merchant is the payment's when the job
    names a payment (one read, on failure only), else the one the job names, if any."""
    payment_id, merchant_id = meta.get("payment_id"), meta.get("merchant_id")
    if payment_id is not None:
        owner = db.session.execute(select(Payment.merchant_id).where(Payment.id == int(payment_id))).scalar()
        if owner is None:  # the payment is gone: keep the row, without a reference to nothing
            return None, merchant_id
        return int(payment_id), owner
    return None, merchant_id


def describe(exc_type, exc) -> tuple[str, str]:
    """(type name, message); a Permanent failure is described by the error it was raised from."""
    if isinstance(exc, Permanent) and exc.__cause__ is not None:
        return type(exc.__cause__).__name__, _text(exc) or _text(exc.__cause__)
    name = getattr(exc_type, "__name__", "Exception")
    if name == "AbandonedJobError":
        return name, ABANDONED
    return name, _text(exc) or name


def _text(exc) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose message itself fails
        return f"<{type(exc).__name__} whose message could not be read>"


def clean(text: str, limit: int, keep_end: bool = False) -> str:
    """Text any database column takes: no NUL, no lone surrogates, at most `limit` characters."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if keep_end else text[: limit - 1] + "…"


def _jsonable(value):
    """The value as JSON keeps it (our jobs take ids); anything else as its repr."""
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError, RecursionError):
        return [repr(v)[:200] for v in value]


def resolved(dead_letter_id: int) -> None:
    """Its retry ran to the end: the row is resolved. Commits."""
    statement = (
        update(DeadLetter)
        .where(DeadLetter.id == int(dead_letter_id), DeadLetter.status != S.RESOLVED)
        .values(status=S.RESOLVED, resolved_at=utcnow())
    )
    db.session.execute(statement.execution_options(synchronize_session=False))
    db.session.commit()


# -- retrying by hand ---------------------------------------------------------------------
def retry_job_id(dead_letter_id: int) -> str:
    return f"dead-letter-{dead_letter_id}"


def job_alive(dead_letter_id: int) -> bool:
    """Whether the retry's job is waiting or running (False when Redis lost it or is away)."""
    try:
        job = Job.fetch(retry_job_id(dead_letter_id), connection=get_redis())
        return job.get_status(refresh=False) in LIVE
    except (NoSuchJobError, redis.RedisError):
        return False


def retry(row: DeadLetter) -> DeadLetter:
    """Enqueues the row's job again, with its arguments, under the row's stable job id, after
    marking the row `retrying` (one compare-and-set). Raises AlreadyResolved, RetryInProgress
    (its retry was asked for less than LOST_AFTER ago, or its job is waiting or running) or
    NotRetryable. Commits. A `retrying` row whose job Redis lost may be retried again."""
    if row.status == S.RESOLVED:
        raise AlreadyResolved("This job has already been retried successfully.")
    just_asked = row.retried_at is not None and row.retried_at > utcnow() - LOST_AFTER
    if row.status == S.RETRYING and (just_asked or job_alive(row.id)):
        # A retry asked for a moment ago counts as under way even before its job reaches Redis
        # (it goes out after the commit); past that, only a job Redis still holds does.
        raise RetryInProgress("This job is being retried already.")
    if not _known_job(row.func):
        raise NotRetryable("This job no longer exists in this version of the gateway.")
    won = db.session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == row.id, DeadLetter.status == row.status, DeadLetter.retry_count == row.retry_count)
        .values(status=S.RETRYING, retried_at=utcnow(), retry_count=row.retry_count + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        db.session.rollback()
        raise RetryInProgress("This job is being retried already.")
    meta = {"dead_letter_id": row.id, "payment_id": row.payment_id, "merchant_id": row.merchant_id}
    enqueue(row.func, *row.args, queue=row.queue, job_id=retry_job_id(row.id), meta=meta)
    db.session.commit()  # the job goes out now
    db.session.refresh(row)
    return row


def _known_job(path: str) -> bool:
    """Only the gateway's own job functions are run again, whatever a row says."""
    from portal import jobs  # jobs import the services

    module, _, name = path.rpartition(".")
    return module == jobs.__name__ and callable(getattr(jobs, name, None)) and not name.startswith("_")


@step("dead_letter_retries_lost")
def retries_lost(now: datetime) -> int:
    """A row `retrying` whose job is gone (Redis lost it, or the job ended and its row could
    not be written) goes back to `failed`, where it can be retried again."""
    rows = db.session.scalars(
        select(DeadLetter.id)
        .where(DeadLetter.status == S.RETRYING, DeadLetter.retried_at < now - LOST_AFTER)
        .order_by(DeadLetter.retried_at)
        .limit(BATCH)
    ).all()
    lost = [ident for ident in rows if not job_alive(ident)]
    if lost:
        db.session.execute(
            update(DeadLetter)
            .where(DeadLetter.id.in_(lost), DeadLetter.status == S.RETRYING)
            .values(status=S.FAILED)
            .execution_options(synchronize_session=False)
        )
        log.warning("dead letters whose retry was lost, back to failed: %s", lost)
    return len(lost)


# -- what a merchant sees -----------------------------------------------------------------
def counts(merchant_id: int) -> dict:
    """The merchant's dead letters: unresolved (failed or retrying), retrying, resolved,
    retried (at least once, by hand) and total."""
    rows = db.session.execute(
        select(DeadLetter.status, func.count(), func.count().filter(DeadLetter.retry_count > 0))
        .where(DeadLetter.merchant_id == merchant_id)
        .group_by(DeadLetter.status)
    ).all()
    by_status = {status: n for status, n, _ in rows}
    return {
        "unresolved": by_status.get(S.FAILED, 0) + by_status.get(S.RETRYING, 0),
        "retrying": by_status.get(S.RETRYING, 0),
        "resolved": by_status.get(S.RESOLVED, 0),
        "retried": sum(retried for _, _, retried in rows),
        "total": sum(by_status.values()),
    }


def newest_first(merchant_id: int, status: str | None = None):
    query = DeadLetter.for_merchant(merchant_id)
    if status:
        query = query.filter(DeadLetter.status == status)
    return query.order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc())


def recent_errors_first(merchant_id: int):
    return DeadLetter.for_merchant(merchant_id).order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
