"""Idempotency-Key handling: the first request with a key claims it; repeats replay the
first answer; a repeat with another body is refused. Answers of 5xx are not kept, so a
client may retry after our failure."""
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass
class Claim:
    state: str  # "new", "replay", "mismatch", "in_progress"
    record: IdempotencyRecord | None


def request_hash(payload) -> str:
    """ASCII JSON (lone surrogates escaped, never an encoding error); non-finite numbers hashed by name."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def claim(merchant_id: int, api: str, key: str, payload) -> Claim:
    digest = request_hash(payload)
    record = IdempotencyRecord(merchant_id=merchant_id, api=api, key=key, request_hash=digest)
    db.session.add(record)
    try:
        db.session.commit()
        return Claim("new", record)
    except IntegrityError:
        db.session.rollback()
    existing = IdempotencyRecord.query.filter_by(merchant_id=merchant_id, api=api, key=key).first()
    if existing is None:  # released between our insert and our read: claim again
        return claim(merchant_id, api, key, payload)
    if existing.request_hash != digest:
        return Claim("mismatch", existing)
    if existing.status_code is None:
        return Claim("in_progress", existing)
    return Claim("replay", existing)


def complete(record: IdempotencyRecord, status_code: int, body) -> None:
    if status_code >= 500:
        db.session.delete(record)
    else:
        record.status_code, record.response_body = status_code, body
    db.session.commit()
