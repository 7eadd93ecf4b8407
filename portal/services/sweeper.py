"""The sweeper: re-derives lost work from the database, so a lost callback, a lost job or a
dead process still settles. It runs the steps each rail registers, in order.

Guarantees: a step that fails on one row records why on that row and goes on with the
next; a step that fails as a whole is reported and never stops the steps after it.
"""

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from portal.extensions import db
from portal.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 200  # rows per step per sweep: a backlog drains over several sweeps, never in one long transaction

Step = Callable[[datetime], int]
_STEPS: dict[str, Step] = {}


def step(name: str):
    """Registers the decorated `fn(now) -> rows handled` as the sweeper step `name`."""

    def register(fn: Step) -> Step:
        _STEPS[name] = fn
        return fn

    return register


def sweep() -> dict:
    """Runs every step; returns rows handled per step (or the error that stopped a step)."""
    import portal.services  # noqa: F401  (every rail's steps are registered on import)

    results: dict = {}
    now = utcnow()
    for name, fn in list(_STEPS.items()):
        try:
            results[name] = fn(now)
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            log.exception("sweeper step %s failed", name)
            results[name] = f"error: {exc.__class__.__name__}"
    return results


def each_row(rows: Iterable, handle: Callable, record_failure: Callable[[object, Exception], None]) -> int:
    """Calls `handle(row)` for each row, committing after each; a row whose handling raises
    is rolled back and handed to `record_failure(row, exc)` instead. Returns how many were
    handled (handle may return False for a row it looked at and left alone)."""
    done = 0
    for row in rows:
        ident = getattr(row, "id", row)
        try:
            if handle(row) is not False:
                done += 1
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            log.exception("sweeper: row %s failed", ident)
            try:
                record_failure(ident, exc)
                db.session.commit()
            except Exception:  # the failure cannot even be written: the log has it; go on
                db.session.rollback()
                log.exception("sweeper: could not record the failure of row %s", ident)
    return done
