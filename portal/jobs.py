"""RQ job functions: thin. Each loads rows by id, calls a service, and is safe to run twice."""
import logging

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.daraja import DarajaError
from portal.services import payments, sweeper
from portal.timeutil import utcnow

log = logging.getLogger(__name__)
QUERYABLE = (PaymentStatus.PROCESSING, PaymentStatus.TIMEOUT, PaymentStatus.CANCELLED)


def query_stk_payment(payment_id: int) -> str:
    """Asks Daraja for an STK payment's result and applies it (source: query)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.status not in QUERYABLE or not payment.checkout_request_id:
        return "nothing to ask"
    client = payments.daraja_for(db.session.get(Merchant, payment.merchant_id))
    try:
        result = client.stk_query(payment.checkout_request_id)
    except DarajaError as exc:
        if exc.retryable:
            raise
        log.warning("STK query for payment %s refused: %s", payment_id, exc)
        return f"refused: {exc}"
    payment.last_queried_at = utcnow()
    if result.pending:
        db.session.commit()
        return "pending"
    outcome = payments.apply_stk_result(
        payment, payments.StkResult(result.result_code, result.result_desc or ""), source="query")
    db.session.commit()
    return outcome


def sweep() -> dict:
    return sweeper.sweep()


def sandbox_resolve_stk(request_id: int) -> str:
    from portal.sandbox.daraja import stk

    return stk.resolve_and_call_back(request_id)


def sandbox_deliver(delivery_id: int) -> str:
    from portal.sandbox import delivery

    return delivery.run(delivery_id)
