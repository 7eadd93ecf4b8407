"""Live payment events: every committed transition goes to its merchant's Redis channel (any web
process sees any worker's events), and the stored PaymentEvents serve a client that resumes.

Guarantees: an event is published only after its transaction commits (never one of a
rollback), in one Redis round trip per committed transaction, and publishing never fails or
rolls back a payment: a Redis failure is logged, the stored events stay the truth and a
resume replays them. A follower gets each event at most once, its merchant's only.
"""

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import redis
from flask import Flask, current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import bindparam, event, select

from portal.extensions import db
from portal.models import Payment, PaymentEvent
from portal.services.transitions import Transition, subscribe

log = logging.getLogger(__name__)
PAGE = 500  # stored events read per query when a follower resumes
REPLAY_LIMIT = 5000  # replayed per follower; past it the follower ends and its client resumes from the last
_PENDING = "payment_events"  # Session.info key: (redis client, [(transaction, event)]) of the open transaction


def channel(connection: redis.Redis, merchant_id: int) -> str:
    """The merchant's channel. Redis scopes channels to the server, not to the numbered database
    as it does keys: the name carries the database, so installations that share a server in
    different databases (a staging and a production, the tests' two runs) never hear each other."""
    return f"events:db{connection.connection_pool.connection_kwargs.get('db', 0)}:merchant:{merchant_id}"


@dataclass(frozen=True)
class Event:
    id: int  # the PaymentEvent's id: the order of one payment's timeline, and the resume point
    payment_id: int
    merchant_id: int
    reference: str
    kind: str
    from_status: str | None
    to_status: str
    source: str
    amount: int  # minor units
    currency: str
    at: datetime  # naive UTC

    def dumps(self) -> str:
        # vars(), not dataclasses.asdict: asdict deep-copies every field, a tenth of a callback's CPU
        return json.dumps({**vars(self), "at": self.at.isoformat()}, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> "Event":
        data = json.loads(raw)
        data["at"] = datetime.fromisoformat(data["at"])
        return cls(**data)


def _note(t: Transition) -> None:
    """A transition listener: runs inside the transaction, so it only notes the event."""
    session = db.session()
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = (current_app.extensions["redis"], [])
    innermost = session.get_nested_transaction() or session.get_transaction()  # a savepoint may roll it back
    pending[1].append(
        (
            innermost,
            Event(
                t.event_id,
                t.payment_id,
                t.merchant_id,
                t.reference,
                t.kind,
                t.from_status,
                t.to_status,
                t.source,
                t.amount,
                t.currency,
                t.at,
            ),
        )
    )


def _publish(session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    connection, noted = pending[0], [e for _transaction, e in pending[1]]
    if not noted:  # a savepoint rolled them all back
        return
    try:
        if len(noted) == 1:
            connection.publish(channel(connection, noted[0].merchant_id), noted[0].dumps())
        else:  # one round trip for the whole transaction's events
            pipe = connection.pipeline(transaction=False)
            for e in noted:
                pipe.publish(channel(connection, e.merchant_id), e.dumps())
            pipe.execute()
    except Exception:  # the payment stands; streams that missed these replay them from the database
        log.warning("could not publish payment events %s", [e.id for e in noted], exc_info=True)


def _drop_rolled_back(session, rolled_back) -> None:
    """A rollback (of a savepoint, or of everything) takes back the events noted within it."""
    pending = session.info.get(_PENDING)
    if pending is not None:
        pending[1][:] = [(t, e) for t, e in pending[1] if not _within(t, rolled_back)]


def _within(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def _forget(session, transaction) -> None:
    if transaction.parent is None:  # the outer transaction ended without a commit publishing its events
        session.info.pop(_PENDING, None)


subscribe(_note)
event.listen(Session, "after_commit", _publish)
event.listen(Session, "after_soft_rollback", _drop_rolled_back)
event.listen(Session, "after_transaction_end", _forget)


_E, _P = PaymentEvent.__table__, Payment.__table__
# Built once. Scoped to the merchant through its payments; the client's cursor is an event id.
_STORED = (
    select(
        _E.c.id,
        _E.c.payment_id,
        _P.c.merchant_id,
        _P.c.reference,
        _P.c.kind,
        _E.c.from_status,
        _E.c.to_status,
        _E.c.source,
        _P.c.amount,
        _P.c.currency,
        _E.c.created_at,
    )
    .join_from(_E, _P, _P.c.id == _E.c.payment_id)
    .where(_P.c.merchant_id == bindparam("merchant_id"), _E.c.id > bindparam("after"))
    .order_by(_E.c.id)
    .limit(bindparam("limit"))
)


def stored_after(merchant_id: int, after: int, limit: int = PAGE) -> list[Event]:
    """The merchant's stored events with ids above `after`, oldest first."""
    rows = db.session.execute(_STORED, {"merchant_id": merchant_id, "after": after, "limit": limit})
    return [Event(*row) for row in rows]


class Subscription:
    """A follower's subscription to its merchant's channel, confirmed by Redis before the
    constructor returns: whatever is published afterwards reaches it. Raises redis.RedisError."""

    def __init__(self, connection: redis.Redis, merchant_id: int, timeout: float = 5.0):
        self._pubsub = connection.pubsub()
        try:
            self._pubsub.subscribe(channel(connection, merchant_id))
            deadline = time.monotonic() + timeout
            while (message := self._pubsub.get_message(timeout=max(deadline - time.monotonic(), 0))) is None or (
                message["type"] != "subscribe"
            ):
                if time.monotonic() >= deadline:
                    raise redis.TimeoutError("Redis did not confirm the subscription")
        except BaseException:
            self.close()
            raise

    def next(self, timeout: float) -> Event | None:
        """The next event published, or None after `timeout` seconds."""
        message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=max(timeout, 0.001))
        if message is None or message["type"] != "message":
            return None
        try:
            return Event.loads(message["data"])
        except (ValueError, TypeError, KeyError):
            log.warning("ignored an unreadable message on %s", message.get("channel"))
            return None

    def close(self) -> None:
        self._pubsub.close()


def follow(
    app: Flask,
    subscription: Subscription,
    merchant_id: int,
    after: int | None,
    *,
    heartbeat: float,
    lifetime: float,
    clock=time.monotonic,
) -> Iterator[Event | None]:
    """One follower's events: with `after`, first the stored ones above it, then (the
    subscription having been opened before) the live ones, each once; None every `heartbeat`
    seconds. Ends after `lifetime` seconds, when Redis fails, or after REPLAY_LIMIT replayed
    events (the client resumes from the last one it got)."""
    deadline = clock() + lifetime
    replayed: set[int] = set()  # published after the subscription and stored before the replay read them
    while after is not None:
        with app.app_context():  # a pooled connection for the read only, not for the stream's life
            page = stored_after(merchant_id, after)
        for e in page:
            replayed.add(e.id)
            yield e
        if len(page) < PAGE:
            break
        after = page[-1].id
        if len(replayed) >= REPLAY_LIMIT or clock() >= deadline:
            return
    beat = clock() + heartbeat
    while (now := clock()) < deadline:
        try:
            e = subscription.next(min(beat, deadline) - now)
        except redis.RedisError:
            log.warning("a live event stream of merchant %s lost Redis; its client resumes", merchant_id)
            return
        if e is not None and e.merchant_id == merchant_id and e.id not in replayed:
            yield e
        if clock() >= beat:
            yield None
            beat = clock() + heartbeat
