"""RQ job functions: thin. Each loads rows by id, calls a service, and is safe to run twice.

A job that raises is retried with backoff (queueing.backoff) and, once its retries are
spent, becomes a dead letter; one that raises queueing.Permanent becomes one at once."""

from rq import get_current_job

from portal.providers.daraja import DarajaError
from portal.providers.paystack import PaystackError
from portal.queueing import Permanent
from portal.services import errors, escrow, mpesa, otps, sms, sweeper
from portal.services.mpesa import b2c
from portal.services.paystack import charges as paystack_charges
from portal.services.paystack import transfers as paystack_transfers

# What each job does, in a merchant's words (the dead-letter pages and API show it).
TITLES = {
    "query_stk_payment": "Ask M-Pesa for the result of an STK push",
    "send_payout": "Send a B2C payout to M-Pesa",
    "ask_payout_status": "Ask M-Pesa (Transaction Status) about a payout",
    "verify_paystack_payment": "Ask Paystack (verify) about a payment and apply the answer",
    "send_paystack_transfer": "Send a Paystack transfer to an M-Pesa wallet",
    "verify_paystack_transfer": "Ask Paystack (verify) about a transfer and apply the answer",
    "hold_escrow": "Hold a paid booking's payment in escrow",
    "water_issue_otp": "Issue a paid water customer's OTP and send it by SMS",
    "send_sms": "Send an SMS through Africa's Talking",
    "sweep": "Sweep for lost work",
    "sandbox_resolve_stk": "Sandbox: answer an STK prompt",
    "sandbox_deliver": "Sandbox: deliver a callback",
    "sandbox_resolve_paystack_transfer": "Sandbox: settle a Paystack transfer",
    "sandbox_process_paystack_refund": "Sandbox: process a Paystack refund",
}


def _provider_job(work, payment_id: int, refusal: type[Exception], refused: str) -> str:
    """`work(payment_id)`, where the provider out of reach, busy or failing (5xx) is retried, and
    its refusal (`refusal`, worded `refused: ...`), or credentials not set up, is permanent."""
    try:
        return work(payment_id)
    except errors.NotConfigured as exc:
        raise Permanent(str(exc)) from exc
    except refusal as exc:
        if exc.retryable or exc.status >= 500:
            raise
        raise Permanent(f"{refused}: {exc}") from exc


def query_stk_payment(payment_id: int) -> str:
    """Asks Daraja for an STK payment's result and applies it (source: query)."""
    return _provider_job(mpesa.query_and_apply, payment_id, DarajaError, "M-Pesa refused the query")


def send_payout(payment_id: int) -> str:
    """Sends a queued B2C payout's next attempt (asking first where the last is in doubt)."""
    return b2c.send(payment_id)


def ask_payout_status(payment_id: int) -> str:
    """Asks Transaction Status about a payout's latest attempt."""
    return b2c.ask_status_job(payment_id)


def verify_paystack_payment(payment_id: int) -> str:
    """Verifies a Paystack payment and applies the answer."""
    return _provider_job(paystack_charges.verify_job, payment_id, PaystackError, "Paystack refused the verify")


def send_paystack_transfer(payment_id: int) -> str:
    """Sends a pending transfer (verifying first an attempt that may have reached Paystack)."""
    return _provider_job(paystack_transfers.send, payment_id, PaystackError, "Paystack refused the transfer")


def verify_paystack_transfer(payment_id: int) -> str:
    """Verifies a transfer Paystack took and applies the answer."""
    return _provider_job(paystack_transfers.verify_job, payment_id, PaystackError, "Paystack refused the verify")


def hold_escrow(payment_id: int) -> str:
    """Holds a completed bookings payment in escrow, once however often it runs."""
    return escrow.hold(payment_id)


def water_issue_otp(payment_id: int) -> str:
    """Issues a completed water payment's OTP and queues its SMS, once however often it runs."""
    return otps.issue_after_completion(payment_id)


def send_sms(sms_id: int) -> str:
    """Sends a queued SMS, once however often this runs. A failure worth retrying raises (the
    SMS is queued again; after the last retry it is failed and this job a dead letter); a
    refusal a person must fix raises Permanent. Run again from its dead letter, it sends a
    failed SMS once more."""
    job = get_current_job()
    by_hand = bool(job is not None and (job.meta or {}).get("dead_letter_id"))
    return sms.send(sms_id, by_hand=by_hand, last_try=not (job is not None and job.should_retry))


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


def sandbox_resolve_paystack_transfer(transfer_id: int) -> str:
    from portal.sandbox.paystack import transfers

    return transfers.resolve(transfer_id)


def sandbox_process_paystack_refund(refund_id: int) -> str:
    from portal.sandbox.paystack import refunds

    return refunds.process(refund_id)


def sandbox_deliver(delivery_id: int) -> str:
    from portal.sandbox import delivery

    return delivery.run(delivery_id)
