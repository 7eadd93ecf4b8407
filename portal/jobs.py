"""RQ job functions: thin. Each loads rows by id, calls a service, and is safe to run twice."""

from portal.services import mpesa, sweeper
from portal.services.mpesa import b2c


def query_stk_payment(payment_id: int) -> str:
    """Asks Daraja for an STK payment's result and applies it (source: query)."""
    return mpesa.query_and_apply(payment_id)


def send_payout(payment_id: int) -> str:
    """Sends a queued B2C payout's next attempt (asking first where the last is in doubt)."""
    return b2c.send(payment_id)


def ask_payout_status(payment_id: int) -> str:
    """Asks Transaction Status about a payout's latest attempt."""
    return b2c.ask_status_job(payment_id)


def sweep() -> dict:
    return sweeper.sweep()


def sandbox_resolve_stk(request_id: int) -> str:
    from portal.sandbox.daraja import stk

    return stk.resolve_and_call_back(request_id)


def sandbox_deliver(delivery_id: int) -> str:
    from portal.sandbox import delivery

    return delivery.run(delivery_id)
