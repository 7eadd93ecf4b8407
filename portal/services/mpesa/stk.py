"""M-Pesa Express (STK push): ask the customer to pay, apply Daraja's result, ask Daraja
(STK query) when a result is missing or must be confirmed.

Guarantees: the payment row exists (committed) before Daraja is called, so no callback can
beat it; a push never leaves its payment `pending` by itself (the sweeper settles one whose
process died); a success that would move a final payment is applied only from Daraja's own
answer to an STK query, never from a callback alone.
"""

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from portal.extensions import db, loaded_after_commit
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.daraja import DarajaError, DarajaUnavailable, StkQueryResult
from portal.queueing import enqueue
from portal.services.errors import OutcomeUnknown, ProviderRejected, ProviderUnavailable, SubscriberBusy
from portal.services.links import stk_callback_url
from portal.services.mpesa.client import daraja_for
from portal.services.transitions import create_payment, current_status, transition
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)
QUERYABLE = (S.PROCESSING, S.TIMEOUT, S.CANCELLED)


def status_for_result(code) -> str:
    """Daraja ResultCode 0 -> completed; 1032 -> cancelled; 1037 -> timeout; else failed."""
    code = str(code)
    if code == "0":
        return S.COMPLETED
    return {"1032": S.CANCELLED, "1037": S.TIMEOUT}.get(code, S.FAILED)


def new_reference() -> str:
    return "PAY" + secrets.token_hex(8).upper()


@dataclass(frozen=True)
class StkResult:
    result_code: str
    result_desc: str
    receipt: str | None = None
    transaction_date: str | None = None


@dataclass(frozen=True)
class PaymentState:
    """The columns a result is checked against, read in one statement."""

    id: int
    merchant_id: int
    reference: str
    status: str
    amount: int
    phone: str | None
    checkout_request_id: str | None
    receipt: str | None


_PAYMENTS = Payment.__table__
_STATE = select(
    _PAYMENTS.c.id,
    _PAYMENTS.c.merchant_id,
    _PAYMENTS.c.reference,
    _PAYMENTS.c.status,
    _PAYMENTS.c.amount,
    _PAYMENTS.c.phone,
    _PAYMENTS.c.checkout_request_id,
    _PAYMENTS.c.receipt,
)
# Built once: these are read on every callback.
_BY_CHECKOUT_ID = _STATE.where(_PAYMENTS.c.checkout_request_id == bindparam("key")).limit(1)
_BY_UNACKNOWLEDGED_REFERENCE = _STATE.where(
    _PAYMENTS.c.reference == bindparam("key"), _PAYMENTS.c.checkout_request_id.is_(None)
).limit(1)


def _load_state(statement, key: str) -> PaymentState | None:
    row = db.session.connection().execute(statement, {"key": key}).first()
    return PaymentState(*row) if row else None


def state_by_checkout_id(checkout_request_id: str) -> PaymentState | None:
    return _load_state(_BY_CHECKOUT_ID, checkout_request_id)


def state_of_unacknowledged(reference: str) -> PaymentState | None:
    """A payment whose push has no CheckoutRequestID stored yet (its answer not back, or lost)."""
    return _load_state(_BY_UNACKNOWLEDGED_REFERENCE, reference)


def ask_daraja(payment_id: int) -> None:
    """Queues an STK query for the payment (one at a time per payment), sent after commit."""
    enqueue(
        "portal.jobs.query_stk_payment",
        payment_id,
        queue="payments",
        job_id=f"stk-query-{payment_id}",
        meta={"payment_id": payment_id},
    )


def apply_stk_result(payment, result: StkResult, source: str, *, current: str | None = None) -> str:
    """Applies a Daraja STK result to `payment` (a Payment or PaymentState). Returns
    'applied', 'duplicate' (already in that state), 'stale' (final elsewhere; this result may
    not move it) or 'unconfirmed' (a success for a final payment: only an STK query's answer,
    source 'query', may apply it). The caller commits."""
    target = status_for_result(result.result_code)
    if current is None:
        current = current_status(payment.id)
    if current == target:
        if target == S.COMPLETED and result.receipt and getattr(payment, "receipt", None) is None:
            _keep_receipt(payment.id, result)  # an STK query settled it first: its answer has no receipt
        return "duplicate"
    if target == S.COMPLETED and current in S.FINAL and current in S.ALLOWED_FROM[S.COMPLETED] and source != "query":
        return "unconfirmed"
    detail = f"ResultCode {result.result_code}: {result.result_desc}"
    if target == S.COMPLETED and current in (S.TIMEOUT, S.CANCELLED):
        detail += f" (late success: the payment had been marked {current}; the customer paid)"
    fields = {"result_code": result.result_code[:16], "result_desc": result.result_desc}
    if target == S.COMPLETED:
        fields.update(receipt=result.receipt, transaction_date=result.transaction_date)
    if transition(payment, target, source, detail, current=current, **fields):
        return "applied"
    # lost a race: a concurrent copy of this result may have won it
    now = current_status(payment.id)
    return "duplicate" if now == target else "stale"


def _keep_receipt(payment_id: int, result: StkResult) -> None:
    """Records the receipt of a completed payment that has none (not a transition: the status
    stands). Only ever fills an empty receipt."""
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == S.COMPLETED, Payment.receipt.is_(None))
        .values(receipt=result.receipt, transaction_date=result.transaction_date, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def initiate_stk_push(
    merchant: Merchant,
    *,
    phone: str,
    amount: int,
    account_reference: str,
    description: str,
    api: str,
    source: str = "api",
    idempotency_key: str | None = None,
    reference: str | None = None,
    uid: str | None = None,
    meta: dict | None = None,
) -> Payment:
    """Records a pending payment, asks Daraja to prompt the customer, and moves the payment
    to processing. `amount` is in minor units and must be whole shillings. A dialect that names
    payments its own way passes their `reference` (unique; default PAY + 16 hex digits) and `uid`.

    Raises NotConfigured, SubscriberBusy, ProviderRejected, ProviderUnavailable (the payment
    is failed) or OutcomeUnknown (the payment is timeout until the truth arrives).
    """
    client = daraja_for(merchant)
    if amount <= 0 or amount % 100:
        raise ValueError("M-Pesa amounts are whole shillings")
    # The payment keeps what this function writes to it: the answer needs no read-back.
    with loaded_after_commit():
        payment = create_payment(
            source,
            f"STK push requested through the {api} API",
            merchant_id=merchant.id,
            reference=reference or new_reference(),
            uid=uid,
            rail="mpesa",
            kind="stk_push",
            status=S.PENDING,
            amount=amount,
            currency="KES",
            phone=phone,
            account_reference=account_reference,
            description=description,
            api=api,
            idempotency_key=idempotency_key,
            meta=meta or {},
        )
        callback_url = stk_callback_url(payment)
        db.session.commit()  # the row exists before Daraja can possibly call back

        try:
            ack = client.stk_push(phone, amount // 100, callback_url, account_reference, description)
        except DarajaError as exc:
            transition(
                payment,
                S.FAILED,
                source,
                f"Daraja refused the push: {exc.error_code} {exc.error_message}",
                current=S.PENDING,
                result_code=exc.error_code[:16],
                result_desc=exc.error_message,
            )
            db.session.commit()
            if exc.subscriber_locked:
                raise SubscriberBusy(exc.error_message) from exc
            if exc.retryable:
                raise ProviderUnavailable(exc.error_message) from exc
            raise ProviderRejected(exc.error_code, exc.error_message) from exc
        except DarajaUnavailable as exc:
            if exc.maybe_sent:
                _unknown(payment, source, f"push outcome unknown: {exc}")
                raise OutcomeUnknown(payment) from exc
            detail = f"Daraja unreachable: {exc}"
            transition(payment, S.FAILED, source, detail, current=S.PENDING, result_desc="M-Pesa unreachable")
            db.session.commit()
            raise ProviderUnavailable(str(exc)) from exc
        except Exception as exc:  # a bug or an outage of ours mid-push: never leave it pending unexplained
            db.session.rollback()
            log.exception("STK push for payment %s failed unexpectedly", payment.id)
            _unknown(
                payment,
                source,
                f"push interrupted by an internal error ({exc.__class__.__name__}); "
                "the outcome is unknown until M-Pesa reports it",
            )
            raise OutcomeUnknown(payment) from exc

        transition(
            payment,
            S.PROCESSING,
            source,
            ack.customer_message,
            current=S.PENDING,
            checkout_request_id=ack.checkout_request_id,
            merchant_request_id=ack.merchant_request_id,
            customer_message=ack.customer_message,
        )
        from portal.services.mpesa.stk_inbox import orphans_of, replay  # a callback may have beaten the ack here

        early = orphans_of(ack.checkout_request_id)  # in this transaction: its connection, no round trip of its own
        db.session.commit()
        replay(early)
        return payment


def _unknown(payment, source: str, detail: str) -> None:
    transition(payment, S.TIMEOUT, source, detail, current=S.PENDING)
    db.session.commit()


def query_and_apply(payment_id: int) -> str:
    """Asks Daraja for an STK payment's result and applies it (source: query), if it still
    has one to ask for. Raises NotConfigured, DarajaError and DarajaUnavailable: the job
    tells the failures worth a retry from the others."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.status not in QUERYABLE or not payment.checkout_request_id:
        return "nothing to ask"
    _result, outcome = ask_now(payment)
    return outcome


def ask_now(payment: Payment) -> tuple[StkQueryResult, str]:
    """Asks Daraja (STK query) about a payment that has a CheckoutRequestID, applies the
    answer by the rules of `apply_stk_result` and commits. Returns Daraja's answer and what
    applying it did ('pending' while Daraja is still processing). Raises NotConfigured,
    DarajaError and DarajaUnavailable."""
    client = daraja_for(db.session.get(Merchant, payment.merchant_id))
    result = client.stk_query(payment.checkout_request_id)
    payment.last_queried_at = utcnow()
    if result.pending:
        db.session.commit()
        return result, "pending"
    outcome = apply_stk_result(
        payment, StkResult(result.result_code, result.result_desc or ""), source="query", current=payment.status
    )
    db.session.commit()
    return result, outcome
