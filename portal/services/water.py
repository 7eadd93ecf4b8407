"""Water payments: a customer pays at a station for whole liters by M-Pesa; once the payment
completes, services/otps.py issues the code that unlocks the dispense.

The amount is rounded to whole liters by the merchant's pricing before the push, and the
payment remembers the liters, the station and the caller's metadata."""

import secrets
import string
import time
from datetime import UTC, datetime

from portal.models import Merchant, Payment, Station
from portal.services.mpesa.stk import initiate_stk_push
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


def serialise(payment: Payment, status_name: str) -> dict:
    """The water document's transaction (its 'Get Transaction Status' data)."""
    meta = payment.meta or {}
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
        "mpesaReceiptNumber": payment.receipt,
        "transactionDate": transaction_date(payment),
        "resultCode": result_code(payment),
        "resultDesc": payment.result_desc,
        "metadata": meta.get("metadata") or {},
        "createdAt": iso_z(payment.created_at),
        "updatedAt": iso_z(payment.updated_at),
    }
