"""The payment state machine: every status change is one compare-and-set UPDATE and one
PaymentEvent, so concurrent and duplicate results apply exactly once.

Final states do not move, except a success for a timed-out or cancelled payment (the
customer paid); whoever asks for that must have had the provider confirm it first
(services/mpesa.py). Later work hears of every transition through `subscribe`: each carries
its PaymentEvent's id and the payment's reference, kind, amount and API, read by the statements
that made it (no statement of their own).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from portal.extensions import attach_loaded, db, insert_loaded, loaded_row
from portal.models import Payment, PaymentEvent, PaymentStatus
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    payment_id: int
    merchant_id: int
    from_status: str | None
    to_status: str
    source: str
    detail: str | None
    event_id: int  # the PaymentEvent this transition wrote
    reference: str
    kind: str
    amount: int  # minor units
    currency: str
    api: str  # the dialect that created the payment
    at: datetime  # the event's created_at (naive UTC)


# Built once: the compare-and-set and the event are the hot path of every callback.
_PAYMENTS, _EVENTS = Payment.__table__, PaymentEvent.__table__
_STATUS = select(_PAYMENTS.c.status).where(_PAYMENTS.c.id == bindparam("_id"))
# What a transition tells its listeners about the payment, returned by the statement that moved it.
_DESCRIBED = (_PAYMENTS.c.reference, _PAYMENTS.c.kind, _PAYMENTS.c.amount, _PAYMENTS.c.currency, _PAYMENTS.c.api)
_CAS = (
    update(_PAYMENTS)
    .where(_PAYMENTS.c.id == bindparam("_id"), _PAYMENTS.c.status == bindparam("_known"))
    .returning(*_DESCRIBED)
)
_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
# Attribute names whose column is named otherwise (fields are given by attribute, statements take columns).
_COLUMN_KEYS = {a.key: a.columns[0].key for a in Payment.__mapper__.column_attrs if a.key != a.columns[0].key}
_EVENT_COLUMNS = ("payment_id", "from_status", "to_status", "source", "detail", "created_at")


@lru_cache(maxsize=64)
def _move_and_record(names: frozenset[str]):
    """PostgreSQL: the compare-and-set and its event as one statement (data-modifying CTEs),
    one round trip instead of two; it returns the event's id with the payment's reference,
    kind, amount and currency when the payment moved, nothing when it did not. Built once
    per set of columns written."""
    moved = (
        update(_PAYMENTS)
        .where(_PAYMENTS.c.id == bindparam("_id"), _PAYMENTS.c.status == bindparam("_known"))
        .values({name: bindparam(f"v_{name}", type_=_PAYMENTS.c[name].type) for name in names})
        .returning(_PAYMENTS.c.id, *_DESCRIBED)
        .cte("moved")
    )
    values = [bindparam(f"e_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS[1:]]
    recorded = (
        insert(_EVENTS)
        .from_select(list(_EVENT_COLUMNS), select(moved.c.id, *values))
        .returning(_EVENTS.c.id, _EVENTS.c.payment_id)
        .cte("recorded")
    )
    described = [moved.c[column.key] for column in _DESCRIBED]
    return select(recorded.c.id, *described).join_from(recorded, moved, moved.c.id == recorded.c.payment_id)


_SUBSCRIBERS: list[Callable[[Transition], None]] = []


def subscribe(listener: Callable[[Transition], None]) -> None:
    """`listener(t)` runs inside the transaction that made `t`: it may add rows or enqueue
    jobs (sent after commit), and must not commit or do I/O of its own."""
    if listener not in _SUBSCRIBERS:
        _SUBSCRIBERS.append(listener)


def _publish(t: Transition) -> None:
    for listener in _SUBSCRIBERS:
        listener(t)


def create_payment(source: str, detail: str, **fields) -> Payment:
    """Inserts a payment and its first event (on PostgreSQL as one statement) and returns it
    as loaded: nothing is read back. The caller commits."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        attrs, row = loaded_row(Payment, fields)
        params = {f"p_{key}": value for key, value in row.items()}
        params.update(e_from_status=None, e_to_status=attrs["status"], e_source=source, e_detail=detail)
        payment_id, event_id = connection.execute(_create_with_event(), params).one()
        payment = attach_loaded(Payment, payment_id, attrs)
    else:  # two statements, in the caller's transaction
        payment = insert_loaded(Payment, **fields)
        event_id = connection.execute(
            _EVENT,
            {
                "payment_id": payment.id,
                "from_status": None,
                "to_status": payment.status,
                "source": source,
                "detail": detail,
                "created_at": payment.created_at,
            },
        ).scalar_one()
    p = payment
    _publish(
        Transition(
            p.id,
            p.merchant_id,
            None,
            p.status,
            source,
            detail,
            event_id,
            p.reference,
            p.kind,
            p.amount,
            p.currency,
            p.api,
            p.created_at,
        )
    )
    return payment


@cache
def _create_with_event():
    """PostgreSQL: a payment and its first event in one statement (a data-modifying CTE),
    returning the payment's id and the event's."""
    keys = [column.key for column in _PAYMENTS.c if not column.primary_key]
    created = (
        insert(_PAYMENTS)
        .values({key: bindparam(f"p_{key}", type_=_PAYMENTS.c[key].type) for key in keys})
        .returning(_PAYMENTS.c.id, _PAYMENTS.c.created_at)
        .cte("created")
    )
    event = [bindparam(f"e_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS[1:5]]
    chosen = select(created.c.id, *event, created.c.created_at)
    return insert(_EVENTS).from_select(list(_EVENT_COLUMNS), chosen).returning(_EVENTS.c.payment_id, _EVENTS.c.id)


def current_status(payment_id: int) -> str:
    return db.session.connection().execute(_STATUS, {"_id": payment_id}).scalar_one()


def transition(
    payment, to: str, source: str, detail: str | None = None, *, current: str | None = None, **fields
) -> bool:
    """Moves the payment to `to` if the state machine allows it from its current status.

    `payment` is a Payment or anything with `id` and `merchant_id`; `current`, when the
    caller has just read it, saves a read. Of concurrent callers exactly one wins; the
    others get False and change nothing. The caller commits.
    """
    known = current
    connection = db.session.connection()
    for _ in range(5):
        if known is None:
            known = current_status(payment.id)
        if known not in S.ALLOWED_FROM[to]:
            return False
        values = dict(fields, status=to, updated_at=utcnow())
        if to in S.FINAL:
            values["completed_at"] = values["updated_at"]
        row = {_COLUMN_KEYS.get(name, name): value for name, value in values.items()}  # meta is "metadata"
        event = {"from_status": known, "to_status": to, "source": source, "detail": detail}
        event["created_at"] = values["updated_at"]
        if connection.dialect.name == "postgresql":
            params = {f"v_{name}": value for name, value in row.items()}
            params.update({f"e_{name}": value for name, value in event.items()}, _id=payment.id, _known=known)
            moved = connection.execute(_move_and_record(frozenset(row)), params).first()
        else:
            described = connection.execute(_CAS, dict(row, _id=payment.id, _known=known)).first()
            if described is not None:
                event_id = connection.execute(_EVENT, dict(event, payment_id=payment.id)).scalar_one()
                moved = (event_id, *described)
            else:
                moved = None
        if moved is not None:
            if isinstance(payment, Payment) and payment in db.session:
                for name, value in values.items():  # what the row now holds, without reading it back
                    set_committed_value(payment, name, value)
            _publish(
                Transition(payment.id, payment.merchant_id, known, to, source, detail, *moved, event["created_at"])
            )
            return True
        known = None  # somebody moved it first: read again and decide again
    log.warning("payment %s: gave up moving to %s after repeated concurrent changes", payment.id, to)
    return False
