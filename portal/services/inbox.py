"""One inbox for every provider request: stored raw with (provider, kind) before anything
reads it, then dispatched to the interpreter its rail registered.

Guarantees: whatever bytes arrive are stored (the raw body as bytes; the path, query and
headers cleaned of what a text column refuses, callback tokens redacted); an interpreter
that fails records the failure on that row ("error") and never on another; a row is read
by the sweeper later if its request died between storing and reading it.
"""

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update

from portal.extensions import db, single_statement
from portal.models import Callback
from portal.models.payment import ORPHANED, UNREAD
from portal.services.links import read_query
from portal.services.sweeper import BATCH, each_row, step
from portal.timeutil import utcnow

log = logging.getLogger(__name__)
STRIPPED_HEADERS = {"authorization", "cookie"}
UNREAD_GRACE = timedelta(seconds=30)  # a row younger than this may still be in its own request
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def clean(text: str | None, limit: int | None = None) -> str | None:
    """`text` without what a text column refuses (NUL, lone surrogates), cut to `limit`."""
    if text is None:
        return None
    if not (text.isascii() and text.isprintable()):  # the usual header or query string needs no scan
        text = _UNSTORABLE.sub("\ufffd", text)
    return text[:limit] if limit else text


@dataclass(frozen=True)
class Item:
    """A stored request as an interpreter reads it."""

    id: int
    provider: str
    kind: str
    raw: bytes
    args: dict  # the query string's fields (callback URLs carry ref and token)
    token_valid: bool
    source_ip: str | None
    headers: dict = field(default_factory=dict)  # as stored: Authorization and Cookie left out

    def header(self, name: str) -> str | None:
        """A header's value, whatever case its name came in."""
        name = name.lower()
        return next((v for k, v in self.headers.items() if isinstance(k, str) and k.lower() == name), None)


@dataclass(frozen=True)
class Verdict:
    """What an interpreter made of a request: recorded on its row."""

    outcome: str  # applied, duplicate, orphan, rejected, invalid, error
    detail: str
    provider_id: str | None = None
    payment_id: int | None = None
    merchant_id: int | None = None
    status: str | None = None  # the payment's status afterwards, for acknowledgements that show it
    reply: dict | None = None  # the answer the provider waits for, where it is not a fixed acknowledgement


class Malformed(ValueError):
    """A stored request an interpreter cannot read; its message is the row's verdict detail."""


def _refuse_constant(name: str):
    raise ValueError(name)


def read_json(raw: bytes):
    """The body as JSON (no NaN or Infinity), or Malformed: what every interpreter reads first."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise Malformed("JSON nested too deeply") from None
    except ValueError:  # malformed JSON, invalid UTF-8, a non-finite constant
        raise Malformed("not JSON") from None


Interpreter = Callable[[Item], Verdict]
_INTERPRETERS: dict[tuple[str, str], Interpreter] = {}


def interpreter(provider: str, kind: str):
    """Registers the decorated function as the interpreter of (provider, kind) requests."""

    def register(fn: Interpreter) -> Interpreter:
        _INTERPRETERS[(provider, kind)] = fn
        return fn

    return register


# The hot path's statements, built once (Core on the table: no ORM bookkeeping per call).
_TABLE = Callback.__table__
_STORE = insert(_TABLE).returning(_TABLE.c.id)
_RECORD = update(_TABLE).where(_TABLE.c.id == bindparam("_id"))


def store(
    provider: str, kind: str, raw: bytes, *, path: str, query_string: str, headers: dict, source_ip: str | None
) -> Item:
    """Stores the request and commits. Its callback token, if any, is checked now and
    kept only as a verdict: the stored query string has it redacted."""
    args, token_valid, stored_query = read_query(query_string)
    kept = {clean(k, 100): clean(v, 2000) for k, v in headers.items() if k.lower() not in STRIPPED_HEADERS}
    # One statement, committed on its own before anything reads it.
    row = {
        "provider": provider,
        "kind": kind,
        "path": clean(path, 255),
        "raw": raw,
        "headers": kept,
        "query_string": clean(stored_query, 2000),
        "source_ip": clean(source_ip, 64),
        "token_valid": token_valid,
        "outcome": "received",
        "received_at": utcnow(),
    }
    with single_statement() as connection:
        ident = connection.execute(_STORE, row).scalar_one()
    if db.session().in_transaction():
        db.session.commit()  # the caller's, joined: the row is committed before it is read
    return Item(ident, provider, kind, raw, args, token_valid, source_ip, kept)


def receive(provider: str, kind: str, raw: bytes, **request_meta) -> Verdict:
    """Stores a provider request, then interprets it."""
    return dispatch(store(provider, kind, raw, **request_meta))


def reread(cb: Callback) -> Verdict:
    """Interprets a stored row again (the sweeper's unread rows, orphans whose payment
    now knows its provider id)."""
    args, valid, _stored = read_query(cb.query_string or "")  # valid only for rows stored before redaction
    item = Item(
        cb.id, cb.provider, cb.kind, bytes(cb.raw), args, cb.token_valid or valid, cb.source_ip, cb.headers or {}
    )
    return dispatch(item)


_ORPHANS = (
    select(_TABLE.c.id)
    .where(
        _TABLE.c.provider == bindparam("provider"),
        _TABLE.c.kind == bindparam("kind"),
        _TABLE.c.provider_id == bindparam("provider_id"),
        ORPHANED,
    )
    .order_by(_TABLE.c.id)
)  # built once: every acknowledgement that gives a provider id asks, and the answer is nearly always none


def orphans(provider: str, kind: str, provider_id: str) -> list[int]:
    """Rows of (provider, kind) that came before anything knew `provider_id` (their verdict: orphan)."""
    with single_statement() as connection:
        values = {"provider": provider, "kind": kind, "provider_id": provider_id}
        return connection.execute(_ORPHANS, values).scalars().all()


def replay(callback_ids: list[int]) -> None:
    """Re-reads those rows, now that what they are about can be found."""
    for ident in callback_ids:
        reread(db.session.get(Callback, ident))


def dispatch(item: Item) -> Verdict:
    """Runs the interpreter and records its verdict, committing; a failure is recorded as
    the row's outcome ("error") instead of spreading."""
    fn = _INTERPRETERS.get((item.provider, item.kind))
    try:
        verdict = fn(item) if fn else Verdict("invalid", f"nothing reads {item.provider} {item.kind} requests")
        _record(item.id, verdict)
        db.session.commit()
        return verdict
    except Exception as exc:
        db.session.rollback()
        log.exception("inbox row %s (%s %s) could not be interpreted", item.id, item.provider, item.kind)
        verdict = Verdict("error", f"could not be interpreted: {exc.__class__.__name__}: {exc}"[:500])
        _record(item.id, verdict)
        db.session.commit()
        return verdict


def _record(ident: int, verdict: Verdict) -> None:
    values = {
        "_id": ident,
        "outcome": verdict.outcome,
        "outcome_detail": clean(verdict.detail),
        "processed_at": utcnow(),
    }
    for name in ("provider_id", "payment_id", "merchant_id"):
        if getattr(verdict, name) is not None:
            values[name] = getattr(verdict, name)
    db.session.connection().execute(_RECORD, values)


@step("callbacks_read")
def read_unread(now: datetime) -> int:
    """Rows stored but never interpreted: their request died between the two."""
    rows = db.session.scalars(
        select(Callback).where(UNREAD, Callback.received_at < now - UNREAD_GRACE).order_by(Callback.id).limit(BATCH)
    )

    def read_if_claimed(cb: Callback):
        # two sweeps at once (the worker's and `flask sweep`) must not both read a row: the
        # second would record "duplicate" over the first's verdict
        claimed = db.session.execute(
            update(Callback)
            .where(
                Callback.id == cb.id,
                UNREAD,  # a claim older than the grace is a dead sweep's: take it
                or_(Callback.processed_at.is_(None), Callback.processed_at < now - UNREAD_GRACE),
            )
            .values(processed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        return reread(cb) if claimed else False

    return each_row(rows.all(), read_if_claimed, record_error)


def record_error(ident: int, exc: Exception) -> None:
    """A sweeper's record of a row it failed to read (for sweeper.each_row)."""
    _record(ident, Verdict("error", f"could not be interpreted: {exc.__class__.__name__}"))
