"""The payment state machine: every status change is one compare-and-set UPDATE and one
PaymentEvent, so concurrent and duplicate results apply exactly once.

Final states do not move, except a success for a timed-out or cancelled payment (the
customer paid); whoever asks for that must have had the provider confirm it first
(services/mpesa.py). Later work publishes every transition through `subscribe`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
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


# Built once: the compare-and-set and the event are the hot path of every callback.
_PAYMENTS, _EVENTS = Payment.__table__, PaymentEvent.__table__
_STATUS = select(_PAYMENTS.c.status).where(_PAYMENTS.c.id == bindparam("_id"))
_CAS = update(_PAYMENTS).where(_PAYMENTS.c.id == bindparam("_id"), _PAYMENTS.c.status == bindparam("_known"))
_EVENT = insert(_EVENTS)
_EVENT_COLUMNS = ("payment_id", "from_status", "to_status", "source", "detail", "created_at")


@lru_cache(maxsize=64)
def _move_and_record(names: frozenset[str]):
    """PostgreSQL: the compare-and-set and its event as one statement (a data-modifying CTE),
    one round trip instead of two; it returns the event's id when the payment moved, nothing
    when it did not. Built once per set of columns written."""
    moved = (
        update(_PAYMENTS)
        .where(_PAYMENTS.c.id == bindparam("_id"), _PAYMENTS.c.status == bindparam("_known"))
        .values({name: bindparam(f"v_{name}", type_=_PAYMENTS.c[name].type) for name in names})
        .returning(_PAYMENTS.c.id)
        .cte("moved")
    )
    values = [bindparam(f"e_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS[1:]]
    return insert(_EVENTS).from_select(list(_EVENT_COLUMNS), select(moved.c.id, *values)).returning(_EVENTS.c.id)


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
        payment = attach_loaded(Payment, connection.execute(_create_with_event(), params).scalar_one(), attrs)
    else:  # two statements, in the caller's transaction
        payment = insert_loaded(Payment, **fields)
        connection.execute(
            _EVENT,
            {
                "payment_id": payment.id,
                "from_status": None,
                "to_status": payment.status,
                "source": source,
                "detail": detail,
                "created_at": payment.created_at,
            },
        )
    _publish(Transition(payment.id, payment.merchant_id, None, payment.status, source, detail))
    return payment


@cache
def _create_with_event():
    """PostgreSQL: a payment and its first event in one statement (a data-modifying CTE),
    returning the payment's id."""
    keys = [column.key for column in _PAYMENTS.c if not column.primary_key]
    created = (
        insert(_PAYMENTS)
        .values({key: bindparam(f"p_{key}", type_=_PAYMENTS.c[key].type) for key in keys})
        .returning(_PAYMENTS.c.id, _PAYMENTS.c.created_at)
        .cte("created")
    )
    event = [bindparam(f"e_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS[1:5]]
    chosen = select(created.c.id, *event, created.c.created_at)
    return insert(_EVENTS).from_select(list(_EVENT_COLUMNS), chosen).returning(_EVENTS.c.payment_id)


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
        event = {"from_status": known, "to_status": to, "source": source, "detail": detail}
        event["created_at"] = values["updated_at"]
        if connection.dialect.name == "postgresql":
            params = {f"v_{name}": value for name, value in values.items()}
            params.update({f"e_{name}": value for name, value in event.items()}, _id=payment.id, _known=known)
            done = len(connection.execute(_move_and_record(frozenset(values)), params).all())
        else:
            done = connection.execute(_CAS, dict(values, _id=payment.id, _known=known)).rowcount
            if done == 1:
                connection.execute(_EVENT, dict(event, payment_id=payment.id))
        if done == 1:
            if isinstance(payment, Payment) and payment in db.session:
                for name, value in values.items():  # what the row now holds, without reading it back
                    set_committed_value(payment, name, value)
            _publish(Transition(payment.id, payment.merchant_id, known, to, source, detail))
            return True
        known = None  # somebody moved it first: read again and decide again
    log.warning("payment %s: gave up moving to %s after repeated concurrent changes", payment.id, to)
    return False
