"""Water payments: a customer pays for whole liters, by M-Pesa at a station or through a
Paystack checkout; once the payment completes, services/otps.py issues the code that unlocks
the dispense (whatever the rail).

The amount is rounded to whole liters by the merchant's pricing before the provider is asked,
and the payment remembers the liters, the station and the caller's metadata."""

import secrets
import string
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus, Station
from portal.services.mpesa.stk import initiate_stk_push
from portal.services.paystack import charges
from portal.timeutil import EAT, iso_z

API = "water"
_SUFFIX = string.ascii_uppercase + string.digits


def new_reference() -> str:
    """WS-<epoch milliseconds>-<8 capitals and digits>: WS-1707123456789-ABCD1234."""
    return f"WS-{time.time_ns() // 1_000_000}-{''.join(secrets.choice(_SUFFIX) for _ in range(8))}"


def initiate(
    merchant: Merchant, station: Station | None, *, phone: str, amount: int, liters: int, metadata: dict
) -> Payment:
    """Asks the customer at `phone` to pay `amount` whole shillings for `liters` (already priced
    by the merchant's pricing). Raises what initiate_stk_push raises."""
    reference = new_reference()
    return initiate_stk_push(
        merchant,
        phone=phone,
        amount=amount * 100,
        # Shown on the customer's prompt and receipt: Daraja takes up to 12 letters and digits.
        account_reference="WS" + reference[-8:],
        description=f"Water {liters} L"[:13],
        api=API,
        reference=reference,
        meta={"liters": liters, "station": station.code if station else None, "metadata": metadata},
    )


def start_checkout(
    merchant: Merchant,
    *,
    email: str,
    amount: int,
    liters: int,
    phone: str | None,
    metadata: dict,
    callback_url: str,
) -> charges.Started:
    """A Paystack hosted checkout for `amount` whole shillings buying `liters` (already priced);
    the customer's browser comes back to `callback_url`. The code goes by SMS to `phone`, if
    given. Started by the merchant's own systems (an API key), so at no station. Raises what
    charges.start_checkout raises."""
    return charges.start_checkout(
        merchant,
        api=API,
        reference=new_reference(),
        amount=amount * 100,
        email=email,
        phone=phone,
        callback_url=callback_url,
        meta={"liters": liters, "station": None, "metadata": metadata},
    )


def expires_at(payment: Payment) -> datetime:
    """When the sweeper gives up on a payment nobody paid (SWEEP_TIMEOUT_AFTER after it began)."""
    return payment.created_at + timedelta(seconds=float(current_app.config["SWEEP_TIMEOUT_AFTER"]))


def paystack_payment(reference: str) -> Payment | None:
    """The water Paystack payment with this reference, whoever's it is (the customer's browser
    coming back from the checkout carries no credential)."""
    return db.session.scalars(
        select(Payment).where(Payment.reference == reference, Payment.api == API, Payment.rail == charges.RAIL)
    ).first()


def is_paystack(payment: Payment) -> bool:
    return payment.rail == charges.RAIL


def payment_of(merchant: Merchant, reference: str) -> Payment | None:
    """The merchant's water payment with this reference; another merchant's or another API's is None."""
    payment = Payment.get_for_merchant(merchant.id, reference=reference)
    return payment if payment is not None and payment.api == API else None


def transaction_date(payment: Payment) -> str | None:
    """Daraja's TransactionDate (Nairobi YYYYMMDDHHMMSS) as ISO 8601 UTC, if it is one."""
    try:
        moment = datetime.strptime(payment.transaction_date or "", "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    except ValueError:
        return None
    return iso_z(moment.astimezone(UTC).replace(tzinfo=None))


def result_code(payment: Payment) -> int | str | None:
    code = payment.result_code
    return int(code) if code is not None and code.isdigit() else code


def paid_at(payment: Payment) -> str | None:
    """Paystack's paidAt (ISO 8601) as ISO 8601 UTC with milliseconds, if it is one."""
    try:
        moment = datetime.fromisoformat((payment.meta or {}).get("paid_at") or "")
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return iso_z(moment)


# Paystack's word for where the ledger stands: verify says `abandoned` of a checkout nobody paid.
PAYSTACK_STATUS = {
    PaymentStatus.PENDING: "pending",
    PaymentStatus.PROCESSING: "pending",
    PaymentStatus.COMPLETED: "success",
    PaymentStatus.FAILED: "failed",
    PaymentStatus.CANCELLED: "abandoned",
    PaymentStatus.TIMEOUT: "abandoned",
    PaymentStatus.REVERSED: "reversed",
}


def paystack_status(payment: Payment) -> str | None:
    """The payment's status in Paystack's words; a checkout whose card was declined (timeout, with
    Paystack's reason) is `failed`, one given up on is `abandoned`."""
    if payment.status == PaymentStatus.TIMEOUT and payment.result_desc:
        return "failed"
    return PAYSTACK_STATUS.get(payment.status)


def serialise(payment: Payment, status_name: str) -> dict:
    """The water document's transaction (its 'Get Transaction Status' data), for either rail:
    the M-Pesa fields are null for a Paystack payment and the Paystack fields for an M-Pesa one."""
    meta = payment.meta or {}
    paystack = is_paystack(payment)
    return {
        "id": payment.id,
        "transactionReference": payment.reference,
        "phoneNumber": payment.phone,
        "amount": payment.amount // 100,
        "liters": meta.get("liters"),
        "currency": payment.currency,
        "status": status_name,
        "checkoutRequestId": payment.checkout_request_id,
        "merchantRequestId": payment.merchant_request_id,
        "mpesaReceiptNumber": None if paystack else payment.receipt,
        "transactionDate": paid_at(payment) if paystack else transaction_date(payment),
        "resultCode": result_code(payment),
        "resultDesc": payment.result_desc,
        "metadata": meta.get("metadata") or {},
        "createdAt": iso_z(payment.created_at),
        "updatedAt": iso_z(payment.updated_at),
        "paymentMethod": "paystack" if paystack else "mpesa",
        "email": payment.email,
        "paystackStatus": paystack_status(payment) if paystack else None,
        "paystackChannel": meta.get("channel") if paystack else None,
        "paystackReceiptNumber": payment.receipt if paystack else None,
    }
