"""Callbacks and webhooks from every simulator: POSTed over real HTTP from RQ jobs, after a delay,
as the fault switches say (copies, attempts lost on the way and retried, groups delivered newest
first). Every copy is a SandboxDelivery row and every attempt a SandboxDeliveryAttempt row."""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import requests
from sqlalchemy import update

from portal.extensions import db
from portal.models import SandboxDelivery, SandboxDeliveryAttempt
from portal.queueing import enqueue, get_redis
from portal.sandbox import faults
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

JOB = "portal.jobs.sandbox_deliver"
QUEUE = "sandbox"
TIMEOUT = 10.0  # seconds the receiver has to answer an attempt
ANSWER_KEPT = 2048  # bytes of the receiver's answer kept on the row
HELD, PENDING, DELIVERED, FAILED = "held", "pending", "delivered", "failed"
FINAL = (DELIVERED, FAILED)


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider retries a delivery its receiver refused (non-2xx) or could not be reached for."""

    retries: int = 0  # further attempts after the first
    backoff: float = 1.0  # seconds before the first retry
    factor: float = 2.0  # each further retry waits this many times longer (1: a fixed interval)


NO_RETRY = RetryPolicy()  # Daraja: "no automatic retries"


def every(seconds: float, retries: int) -> RetryPolicy:
    """`retries` retries, `seconds` apart (Paystack's test mode: hourly, 10 times)."""
    return RetryPolicy(retries=retries, backoff=seconds, factor=1.0)


def redact(url: str) -> str:
    """The URL as it may be kept and shown: every query value (callback tokens) and any password hidden."""
    parts = urlsplit(url)
    query = urlencode([(key, "redacted") for key, _ in parse_qsl(parts.query, keep_blank_values=True)])
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def copies() -> int:
    """How many copies of each callback go out now (the duplicates switch)."""
    return max(1, faults.get("SANDBOX_CALLBACK_COPIES"))


def deliver(
    url: str,
    body: dict | str | bytes,
    *,
    provider: str,
    kind: str,
    subject: str,
    delay: float = 0.0,
    headers: dict[str, str] | None = None,
    retry: RetryPolicy = NO_RETRY,
    copies: int | None = None,
    timeout: float | None = None,
    on_done: str | None = None,
) -> list[SandboxDelivery]:
    """Schedules `body` (JSON unless str/bytes, sent as given) to be POSTed to `url` after `delay`
    seconds, once per copy (default: the SANDBOX_CALLBACK_COPIES switch). Call it inside the
    transaction that decides the callback: the rows are added to it and the jobs go out when it
    commits. `subject` names what it is about (e.g. the CheckoutRequestID), for the evidence.

    `timeout`: seconds the receiver has to answer (default TIMEOUT). `on_done`: a job (dotted
    path) given the row's id once the copy is delivered or has failed, for a simulator that acts
    on the answer (kept in `answer`), as Daraja does on a C2B validation."""
    switches = faults.current()
    copies = max(1, switches["SANDBOX_CALLBACK_COPIES"] if copies is None else copies)
    if isinstance(body, dict):
        text = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    else:
        text = body.decode() if isinstance(body, bytes) else body
        headers = dict(headers or {})
    lost = switches["SANDBOX_FAULT_CALLBACK_FAILS"]
    retries = max(retry.retries, switches["SANDBOX_FAULT_CALLBACK_RETRIES"])
    if retry.retries:
        backoff, factor = retry.backoff, retry.factor
    else:  # the fault switch's retries, for providers that do not retry: doubling
        backoff, factor = switches["SANDBOX_FAULT_CALLBACK_BACKOFF"], 2.0
    now = utcnow()
    rows = []
    for copy in range(1, copies + 1):
        row = SandboxDelivery(
            provider=provider,
            kind=kind,
            subject=str(subject)[:64],
            url=redact(url),
            target=url,
            body=text,
            headers=headers,
            copy=copy,
            status=PENDING,
            attempts=0,
            max_attempts=1 + lost + retries,
            lost_attempts=lost,
            backoff=backoff,
            backoff_factor=factor,
            not_before=now + timedelta(seconds=delay),
            timeout=timeout,
            on_done=on_done,
        )
        _join_reorder_group(row, switches)
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    for row in rows:
        _schedule(row)
    return rows


def _join_reorder_group(row: SandboxDelivery, switches: dict) -> None:
    """Out-of-order switch: the n-th delivery of a group of `size` waits until every later member
    is done (or the group has waited long enough); the last member goes at once."""
    size = switches["SANDBOX_FAULT_REORDER"]
    if size < 2:
        return
    try:
        n = get_redis().incr(f"sandbox:reorder:{size}")
    except redis.RedisError:
        log.warning("could not join a reorder group; delivering in order", exc_info=True)
        return
    row.reorder_group = f"{size}:{(n - 1) // size}"
    row.reorder_position = (n - 1) % size
    if row.reorder_position < size - 1:
        row.status = HELD
        row.not_before += timedelta(seconds=switches["SANDBOX_FAULT_REORDER_WAIT"])


def _schedule(row: SandboxDelivery) -> None:
    """A job for `row` once the transaction commits, due at its not_before (never before it).
    RQ's retries cover a job that crashed (the database or Redis away for a moment); a receiver
    that refuses or cannot be reached is the provider's business, attempt by attempt, above."""
    wait = (row.not_before - utcnow()).total_seconds()
    enqueue(JOB, row.id, queue=QUEUE, delay=wait if wait > 0 else None)


def run(delivery_id: int) -> str:
    """The job: one attempt at a delivery, when it is due. Safe to run twice: the attempt is
    claimed by a conditional UPDATE, so two jobs for the same row never both send."""
    row = db.session.get(SandboxDelivery, delivery_id)
    if row is None:
        return "gone"
    if row.status in FINAL:
        return row.status
    if row.not_before > utcnow():  # RQ's scheduler works to the whole second: come back when due
        _schedule(row)
        db.session.commit()
        return "not yet"
    number = row.attempts + 1
    claimed = db.session.execute(
        update(SandboxDelivery)
        .where(
            SandboxDelivery.id == row.id,
            SandboxDelivery.attempts == row.attempts,
            SandboxDelivery.status.in_((HELD, PENDING)),
        )
        .values(attempts=number, status=PENDING)
    ).rowcount
    db.session.commit()  # before the POST: SQLite must not hold its write lock while the receiver writes
    if not claimed:
        return "taken"
    ok, status_code, outcome, answer = _attempt(row, number)
    db.session.add(
        SandboxDeliveryAttempt(delivery_id=row.id, number=number, ok=ok, status_code=status_code, outcome=outcome)
    )
    row.last_outcome = outcome
    if answer is not None:
        row.answer = answer
    if ok:
        row.status, row.delivered_at = DELIVERED, utcnow()
    elif number < row.max_attempts:
        row.not_before = utcnow() + timedelta(seconds=row.backoff * row.backoff_factor ** (number - 1))
        _schedule(row)
    else:
        row.status = FAILED
    if row.status in FINAL and row.reorder_group is not None:
        _release_previous(row)
    if row.status in FINAL and row.on_done:
        enqueue(row.on_done, row.id, queue=QUEUE, job_id=f"sandbox-delivery-done-{row.id}", retry=False)
    db.session.commit()
    return outcome


def _attempt(row: SandboxDelivery, number: int) -> tuple[bool, int | None, str, str | None]:
    """(delivered, HTTP status, outcome for people, the start of the receiver's answer)."""
    if number <= row.lost_attempts:
        return False, None, "lost on the way (fault switch)", None
    try:
        answer = requests.post(
            row.target, data=row.body.encode(), headers=row.headers or {}, timeout=row.timeout or TIMEOUT
        )
    except requests.RequestException as exc:
        return False, None, f"failed: {exc.__class__.__name__}", None
    text = answer.content[:ANSWER_KEPT].decode("utf-8", "replace").replace("\x00", "\ufffd")  # PostgreSQL text
    return 200 <= answer.status_code < 300, answer.status_code, f"HTTP {answer.status_code}", text


def _release_previous(row: SandboxDelivery) -> None:
    """The member before `row` in its reorder group may go now."""
    previous = SandboxDelivery.query.filter_by(
        reorder_group=row.reorder_group, reorder_position=row.reorder_position - 1, status=HELD
    ).first()
    if previous is not None:
        previous.status, previous.not_before = PENDING, utcnow()
        _schedule(previous)


def history(provider: str, subject: str) -> list[dict]:
    """The evidence for one subject: every copy with its attempts, oldest first. The attempts are
    read before the copies: an attempt and its copy's new status are written together, so a
    status read second is never behind the attempts shown (read the other way round, a delivery
    finishing in between showed its last attempt beside a status still pending)."""
    attempts = {}
    query = (
        SandboxDeliveryAttempt.query.join(SandboxDelivery, SandboxDelivery.id == SandboxDeliveryAttempt.delivery_id)
        .filter(SandboxDelivery.provider == provider, SandboxDelivery.subject == subject)
        .order_by(SandboxDeliveryAttempt.id)
    )
    for attempt in query:
        attempts.setdefault(attempt.delivery_id, []).append(
            {
                "number": attempt.number,
                "ok": attempt.ok,
                "status_code": attempt.status_code,
                "outcome": attempt.outcome,
                "at": attempt.at.isoformat(),
            }
        )
    rows = SandboxDelivery.query.filter_by(provider=provider, subject=subject).order_by(SandboxDelivery.id).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "url": r.url,
            "copy": r.copy,
            "status": r.status,
            "attempts": attempts.get(r.id, []),
            "delivered_at": r.delivered_at and r.delivered_at.isoformat(),
        }
        for r in rows
    ]
