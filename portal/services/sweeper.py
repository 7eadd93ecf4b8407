"""The sweeper: re-derives lost work from the database, so a lost callback or a lost job
still settles. Payments silent for SWEEP_QUERY_AFTER seconds get an STK query (again every
SWEEP_QUERY_EVERY); after SWEEP_TIMEOUT_AFTER they are timed out. Callbacks stored but
never interpreted (the process died between the two) are interpreted now."""
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_

from portal.extensions import db
from portal.models import Callback, Payment, PaymentStatus
from portal.queueing import enqueue
from portal.services import callbacks
from portal.services.payments import transition
from portal.timeutil import utcnow

BATCH = 200
UNREAD_GRACE = timedelta(seconds=30)  # a callback younger than this may still be in its request


def sweep() -> dict:
    cfg = current_app.config
    now = utcnow()
    unread = Callback.query.filter(Callback.provider == "daraja", Callback.kind == "stk",
                                   Callback.outcome == "received", Callback.received_at < now - UNREAD_GRACE
                                   ).order_by(Callback.id).limit(BATCH).all()
    for cb in unread:
        callbacks.process(cb)
        db.session.commit()
    give_up = now - timedelta(seconds=cfg["SWEEP_TIMEOUT_AFTER"])
    timed_out = 0
    for payment in (Payment.query.filter(Payment.status == PaymentStatus.PROCESSING,
                                         Payment.created_at < give_up).limit(BATCH).all()):
        if transition(payment, PaymentStatus.TIMEOUT, "sweeper", "no result from M-Pesa after "
                      f"{int(cfg['SWEEP_TIMEOUT_AFTER'] // 60)} minutes"):
            timed_out += 1
    db.session.commit()

    silent = Payment.query.filter(
        Payment.status == PaymentStatus.PROCESSING,
        Payment.rail == "mpesa", Payment.kind == "stk_push",
        Payment.checkout_request_id.isnot(None),
        Payment.created_at < now - timedelta(seconds=cfg["SWEEP_QUERY_AFTER"]),
        or_(Payment.last_queried_at.is_(None),
            Payment.last_queried_at < now - timedelta(seconds=cfg["SWEEP_QUERY_EVERY"])),
    ).order_by(Payment.created_at).limit(BATCH).all()
    for payment in silent:
        payment.last_queried_at = now
        enqueue("portal.jobs.query_stk_payment", payment.id, queue="payments", job_id=f"stk-query-{payment.id}")
    db.session.commit()
    return {"timed_out": timed_out, "queried": len(silent), "callbacks_read": len(unread)}
