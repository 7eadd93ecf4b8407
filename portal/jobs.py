"""RQ job functions: thin. Each loads rows by id, calls a service, and is safe to run twice."""

from portal.services import mpesa, sweeper


def query_stk_payment(payment_id: int) -> str:
    """Asks Daraja for an STK payment's result and applies it (source: query)."""
    return mpesa.query_and_apply(payment_id)


def sweep() -> dict:
    return sweeper.sweep()


def sandbox_resolve_stk(request_id: int) -> str:
    from portal.sandbox.daraja import stk

    return stk.resolve_and_call_back(request_id)


def sandbox_c2b_pay(payment_id: int) -> str:
    from portal.sandbox.daraja import c2b

    return c2b.pay(payment_id)


def sandbox_c2b_validated(delivery_id: int) -> str:
    from portal.sandbox.daraja import c2b

    return c2b.validated(delivery_id)


def sandbox_resolve_b2c(payout_id: int) -> str:
    from portal.sandbox.daraja import b2c

    return b2c.resolve_and_call_back(payout_id)


def sandbox_answer_status(query_id: int) -> str:
    from portal.sandbox.daraja import status

    return status.answer(query_id)


def sandbox_deliver(delivery_id: int) -> str:
    from portal.sandbox import delivery

    return delivery.run(delivery_id)
