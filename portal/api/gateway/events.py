"""GET /api/events: the key's merchant's payment events as Server-Sent Events.

A stream subscribes first, then replays the stored events after `Last-Event-ID` (the header,
or `lastEventId` in the query for clients that cannot set headers; the header wins, being
the newer on a reconnect), then sends live events as they are published; heartbeats keep it
open, and it ends after EVENTS_STREAM_LIFETIME with a `retry:` hint. Each stream holds a
thread, so a web process serves at most EVENTS_MAX_STREAMS at once and answers more with 503.
"""

import json
import random
import threading

import redis
from flask import Response, current_app, g, request
from pydantic import BaseModel, Field

from portal import openapi
from portal.api import envelope
from portal.api.gateway import bp
from portal.api.gateway.transactions import TYPE_OF
from portal.api.parsing import whole_number
from portal.queueing import get_redis
from portal.services import events
from portal.timeutil import iso_z


class StreamSlots:
    """The open streams of this process, up to a cap read at each opening."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open = 0

    def take(self, cap: int) -> bool:
        with self._lock:
            if self.open >= cap:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


def slots() -> StreamSlots:
    return current_app.extensions.setdefault("event_streams", StreamSlots())


class EventsQuery(BaseModel):
    lastEventId: int | None = Field(  # noqa: N815
        None, ge=0, description="Resume after this event id (for clients that cannot set Last-Event-ID)"
    )


class EventsHeaders(BaseModel):
    last_event_id: int | None = Field(
        None, alias="Last-Event-ID", ge=0, description="Resume after this event id (wins over lastEventId)"
    )


@openapi.operation(
    "Live payment events of the key's merchant (Server-Sent Events)",
    query=EventsQuery,
    headers=EventsHeaders,
    responses={
        200: openapi.Answer(None, "id/event/data frames, heartbeats, a retry hint at the end", "text/event-stream"),
        400: envelope.Failure,
        503: openapi.Answer(envelope.Failure, "Too many streams on this process, or Redis unreachable"),
    },
)
@bp.get("/events")
def stream_events():
    after = _last_event_id()
    config = current_app.config
    retry = config["EVENTS_RETRY"]
    mine = slots()
    if not mine.take(config["EVENTS_MAX_STREAMS"]):
        return _unavailable("Too many open event streams on this server; reconnect shortly", retry)
    try:
        subscription = events.Subscription(get_redis(), g.merchant.id)
    except redis.RedisError:
        mine.give_back()
        return _unavailable("Live events are unavailable right now; reconnect shortly", retry)
    closing = _Closing(subscription, mine)
    lifetime = config["EVENTS_STREAM_LIFETIME"] * random.uniform(0.9, 1.0)  # streams opened together end apart
    followed = events.follow(
        current_app._get_current_object(),
        subscription,
        g.merchant.id,
        after,
        heartbeat=config["EVENTS_HEARTBEAT"],
        lifetime=lifetime,
    )
    response = Response(
        _frames(followed, retry * 1000, closing),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},  # no proxy holds events back
    )
    response.call_on_close(closing)  # also when the body was never read
    return response


def _last_event_id() -> int | None:
    for name, raw in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("lastEventId", request.args.get("lastEventId")),
    ):
        if raw:
            value = whole_number(raw)
            if value is None:
                raise envelope.Invalid(
                    [envelope.field(name, f"{name} must be the id of an event, a whole number", raw)]
                )
            return value
    return None


def _unavailable(message: str, retry: int):
    answer = envelope.fail(503, message, "STREAMS_UNAVAILABLE")
    answer.headers["Retry-After"] = str(retry)
    return answer


class _Closing:
    """Gives the stream's subscription and slot back once, whoever closes first."""

    def __init__(self, subscription: events.Subscription, mine: StreamSlots):
        self._subscription, self._slots = subscription, mine
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            self._subscription.close()
        finally:
            self._slots.give_back()


def _frames(followed, retry_ms: int, closing: _Closing):
    try:
        yield f"retry: {retry_ms}\n\n"  # the first bytes: the headers go out with them
        for e in followed:
            yield ": heartbeat\n\n" if e is None else _frame(e)
        yield f": this stream has reached its lifetime; reconnect with Last-Event-ID\nretry: {retry_ms}\n\n"
    finally:
        closing()


def _frame(e: events.Event) -> str:
    whole, cents = divmod(e.amount, 100)
    data = {
        "id": e.id,
        "transactionId": e.payment_id,
        "reference": e.reference,
        "type": TYPE_OF.get(e.kind, e.kind.upper()),
        "status": e.to_status,
        "previousStatus": e.from_status,
        "source": e.source,
        "amount": whole if cents == 0 else e.amount / 100,
        "currency": e.currency,
        "createdAt": iso_z(e.at),
    }
    return f"id: {e.id}\nevent: payment.{e.to_status}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
