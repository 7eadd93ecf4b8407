"""Idempotency-Key handling: the first request with a key claims it; repeats replay the
first answer; a repeat with another body is refused.

Guarantees: answers of 5xx are not kept, and a request that dies releases its claim, so a
client may retry after our failure; a claim still unanswered after IN_FLIGHT_LIMIT is taken
as dead (no request of ours runs that long) and may be claimed again; keys are kept for
IDEMPOTENCY_TTL (at least 24 hours), then forgotten.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, inspect, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import IdempotencyRecord
from portal.services.sweeper import step
from portal.timeutil import utcnow

MAX_KEY_LENGTH = 255
IN_FLIGHT_LIMIT = timedelta(minutes=2)


@dataclass
class Claim:
    state: str  # "new", "replay", "mismatch", "in_progress"
    record: IdempotencyRecord | None


def request_hash(payload) -> str:
    """ASCII JSON (lone surrogates escaped, never an encoding error); non-finite numbers hashed by name."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def ttl() -> timedelta:
    return timedelta(seconds=float(current_app.config["IDEMPOTENCY_TTL"]))


def claim(merchant_id: int, api: str, key: str, payload) -> Claim:
    digest = request_hash(payload)
    for _ in range(3):
        record = IdempotencyRecord(merchant_id=merchant_id, api=api, key=key, request_hash=digest, created_at=utcnow())
        db.session.add(record)
        try:
            db.session.commit()
            return Claim("new", record)
        except IntegrityError:
            db.session.rollback()
        existing = IdempotencyRecord.query.filter_by(merchant_id=merchant_id, api=api, key=key).first()
        if existing is None:  # released between our insert and our read: claim again
            continue
        now = utcnow()
        expired = existing.created_at < now - ttl()
        dead = existing.status_code is None and existing.created_at < now - IN_FLIGHT_LIMIT
        if expired or dead:
            if _take_over(existing, digest, now):
                return Claim("new", existing)
            continue
        if existing.request_hash != digest:
            return Claim("mismatch", existing)
        if existing.status_code is None:
            return Claim("in_progress", existing)
        return Claim("replay", existing)
    return Claim("in_progress", None)


def _take_over(existing: IdempotencyRecord, digest: str, now: datetime) -> bool:
    """Claims an expired or abandoned record: a compare-and-set on its claim time."""
    taken = db.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.created_at == existing.created_at)
        .values(request_hash=digest, status_code=None, response_body=None, created_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.expire(existing)
    return bool(taken)


def complete(record: IdempotencyRecord, status_code: int, body) -> None:
    if status_code >= 500:
        release(record)
        return
    record.status_code, record.response_body = status_code, body
    db.session.commit()


def release(record: IdempotencyRecord) -> None:
    """Frees the key of a request that failed (or died): the client may retry with it."""
    ident = inspect(record).identity[0]  # read without loading: the session may be failed
    db.session.rollback()
    db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id == ident, IdempotencyRecord.status_code.is_(None))
    )
    db.session.commit()


@step("idempotency_expired")
def forget_expired(now: datetime) -> int:
    return db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - ttl())).rowcount
