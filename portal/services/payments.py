"""Payments: the state machine and STK push initiation.

Guarantees: every transition is one compare-and-set UPDATE plus one PaymentEvent, so
concurrent and duplicate results apply exactly once; final states do not move, except a
success for a timed-out or cancelled payment (the customer paid), which is flagged.
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentEvent, PaymentStatus
from portal.providers.daraja import DarajaClient, DarajaError, DarajaUnavailable
from portal.queueing import get_redis
from portal.timeutil import utcnow

S = PaymentStatus
# Where each API hands Daraja its STK callbacks (endpoint names of webhooks/daraja.py).
CALLBACK_ENDPOINTS = {
    "checkout": "daraja_webhooks.checkout_stk",
    "water": "daraja_webhooks.water_stk",
}
DEFAULT_CALLBACK_ENDPOINT = "daraja_webhooks.gateway_stk"


class PaymentError(Exception):
    """Base of the errors a dialect turns into its own error answer."""


class NotConfigured(PaymentError):
    pass


class SubscriberBusy(PaymentError):
    pass


class ProviderRejected(PaymentError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ProviderUnavailable(PaymentError):
    pass


class OutcomeUnknown(PaymentError):
    """The push may have reached the customer; the payment waits for the truth."""

    def __init__(self, payment: Payment):
        super().__init__("M-Pesa did not confirm the request in time")
        self.payment = payment


def status_for_result(code) -> str:
    code = str(code)
    if code == "0":
        return S.COMPLETED
    return {"1032": S.CANCELLED, "1037": S.TIMEOUT}.get(code, S.FAILED)


def new_reference() -> str:
    return "PAY" + secrets.token_hex(8).upper()


def callback_token(reference: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"stk-callback:{reference}".encode(), hashlib.sha256).hexdigest()[:40]


def callback_token_valid(reference: str | None, token: str | None) -> bool:
    return bool(reference and token) and hmac.compare_digest(callback_token(reference), token)


def external_url(endpoint: str, **values) -> str:
    """An absolute URL under PUBLIC_BASE_URL, built outside any request."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path


def stk_callback_url(payment: Payment) -> str:
    endpoint = CALLBACK_ENDPOINTS.get(payment.api, DEFAULT_CALLBACK_ENDPOINT)
    return external_url(endpoint, ref=payment.reference, token=callback_token(payment.reference))


def daraja_base_url() -> str:
    cfg = current_app.config
    if cfg["DARAJA_BASE_URL"]:
        return cfg["DARAJA_BASE_URL"]
    if cfg["SANDBOX"]:
        return cfg["PUBLIC_BASE_URL"] + "/sandbox/daraja"
    return "https://api.safaricom.co.ke"


def daraja_for(merchant: Merchant) -> DarajaClient:
    if not merchant.has_daraja:
        raise NotConfigured("M-Pesa credentials are not set up for this merchant")
    return DarajaClient(daraja_base_url(), merchant.daraja_consumer_key, merchant.daraja_consumer_secret,
                        merchant.daraja_shortcode, merchant.daraja_passkey, get_redis(),
                        timeout=current_app.config["DARAJA_TIMEOUT"],
                        transaction_type=merchant.daraja_transaction_type, party_b=merchant.daraja_party_b)


def transition(payment: Payment, to: str, source: str, detail: str | None = None, **fields) -> bool:
    """Moves `payment` to `to` if the state machine allows it from its current status.

    A compare-and-set on the status: of concurrent callers, exactly one wins. Returns
    False (and changes nothing) when the payment is already elsewhere. The caller commits.
    """
    for _ in range(5):
        current = db.session.execute(select(Payment.status).where(Payment.id == payment.id)).scalar_one()
        if current not in S.ALLOWED_FROM[to]:
            return False
        values = dict(fields, status=to, updated_at=utcnow())
        if to in S.FINAL:
            values["completed_at"] = values["updated_at"]
        done = db.session.execute(
            update(Payment).where(Payment.id == payment.id, Payment.status == current).values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done == 1:
            db.session.add(PaymentEvent(payment_id=payment.id, from_status=current, to_status=to,
                                        source=source, detail=detail))
            db.session.flush()
            db.session.expire(payment)
            return True
    return False


@dataclass(frozen=True)
class StkResult:
    result_code: str
    result_desc: str
    receipt: str | None = None
    transaction_date: str | None = None


def apply_stk_result(payment: Payment, result: StkResult, source: str) -> str:
    """Applies a Daraja STK result. Returns 'applied', 'duplicate' (already in that state)
    or 'stale' (the payment is final elsewhere and this result may not move it)."""
    target = status_for_result(result.result_code)
    current = db.session.execute(select(Payment.status).where(Payment.id == payment.id)).scalar_one()
    if current == target:
        return "duplicate"
    detail = f"ResultCode {result.result_code}: {result.result_desc}"
    if target == S.COMPLETED and current in (S.TIMEOUT, S.CANCELLED):
        detail += f" (late success: the payment had been marked {current}; the customer paid)"
    fields = {"result_code": result.result_code, "result_desc": result.result_desc}
    if target == S.COMPLETED:
        fields.update(receipt=result.receipt, transaction_date=result.transaction_date)
    if transition(payment, target, source, detail, **fields):
        return "applied"
    # lost the race: a concurrent copy of this result may have won it
    current = db.session.execute(select(Payment.status).where(Payment.id == payment.id)).scalar_one()
    return "duplicate" if current == target else "stale"


def initiate_stk_push(merchant: Merchant, *, phone: str, amount: int, account_reference: str,
                      description: str, api: str, source: str = "api",
                      idempotency_key: str | None = None) -> Payment:
    """Records a pending payment, asks Daraja to prompt the customer, and moves the payment
    to processing. `amount` is in minor units and must be whole shillings.

    Raises NotConfigured, SubscriberBusy, ProviderRejected, ProviderUnavailable (the
    payment is failed) or OutcomeUnknown (the payment is timeout until the truth arrives).
    """
    client = daraja_for(merchant)
    if amount <= 0 or amount % 100:
        raise ValueError("M-Pesa amounts are whole shillings")
    payment = Payment(merchant_id=merchant.id, reference=new_reference(), rail="mpesa", kind="stk_push",
                      status=S.PENDING, amount=amount, currency="KES", phone=phone,
                      account_reference=account_reference, description=description, api=api,
                      idempotency_key=idempotency_key, meta={})
    db.session.add(payment)
    db.session.flush()
    db.session.add(PaymentEvent(payment_id=payment.id, from_status=None, to_status=S.PENDING, source=source,
                                detail=f"STK push requested through the {api} API"))
    db.session.commit()  # the row exists before Daraja can possibly call back

    try:
        ack = client.stk_push(phone, amount // 100, stk_callback_url(payment), account_reference, description)
    except DarajaError as exc:
        transition(payment, S.FAILED, source, f"Daraja refused the push: {exc.error_code} {exc.error_message}",
                   result_code=exc.error_code[:16], result_desc=exc.error_message)
        db.session.commit()
        if exc.subscriber_locked:
            raise SubscriberBusy(exc.error_message) from exc
        if exc.retryable:
            raise ProviderUnavailable(exc.error_message) from exc
        raise ProviderRejected(exc.error_code, exc.error_message) from exc
    except DarajaUnavailable as exc:
        if exc.maybe_sent:
            transition(payment, S.TIMEOUT, source, f"push outcome unknown: {exc}")
            db.session.commit()
            raise OutcomeUnknown(payment) from exc
        transition(payment, S.FAILED, source, f"Daraja unreachable: {exc}", result_desc="M-Pesa unreachable")
        db.session.commit()
        raise ProviderUnavailable(str(exc)) from exc

    transition(payment, S.PROCESSING, source, ack.customer_message,
               checkout_request_id=ack.checkout_request_id, merchant_request_id=ack.merchant_request_id,
               customer_message=ack.customer_message)
    db.session.commit()
    from portal.services.callbacks import replay_orphans  # a callback may have beaten the ack here

    replay_orphans(ack.checkout_request_id)
    return payment
