"""Paystack client: transactions (initialize, verify), M-Pesa charges (mobile_money, provider
mpesa, KES) and their pending check, transfer recipients, transfers and their verification,
refunds, the balance; and `verify_signature` for webhooks.

Amounts are KES here, as `int` or `Decimal` with at most two places (never a float), and
Paystack's subunits (×100) only on the wire: `to_subunits` and `from_subunits` are the one
crossing. Answers become small typed results; refusals are PaystackError with Paystack's message
and code; a Paystack that cannot be reached, does not answer in time or fails (5xx) is
PaystackUnavailable, whose `maybe_sent` says whether the request may have taken effect (then
verify the reference: Paystack refuses a reused one instead of replaying its answer)."""

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import urllib3

from portal.providers.http import pool_for

LIVE_URL = "https://api.paystack.co"  # test and live alike: the key decides the mode
CURRENCY = "KES"
SUBUNITS = 100  # cents per shilling
TEXT_KEPT = 300  # characters of an unreadable answer kept in an error
FINAL_STATUSES = {"success", "failed", "abandoned", "reversed"}
TRANSFER_FINAL = {"success", "failed", "reversed", "rejected", "blocked", "abandoned"}


# -- money and signatures ------------------------------------------------------------------------
def to_subunits(amount: int | Decimal) -> int:
    """KES 1,500 -> 150000. Whole shillings or a Decimal with at most two places; a float or a
    bool is a TypeError (it cannot be trusted to the cent), a third decimal place a ValueError."""
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise TypeError(f"an amount is an int or a Decimal of KES, not {type(amount).__name__}")
    if isinstance(amount, int):
        return amount * SUBUNITS
    if not amount.is_finite():
        raise ValueError(f"not an amount: {amount}")
    subunits = amount * SUBUNITS
    if subunits != subunits.to_integral_value():
        raise ValueError(f"KES {amount} has more than two decimal places")
    return int(subunits)


def from_subunits(subunits: int) -> Decimal:
    """150000 -> Decimal("1500.00"), exact."""
    if isinstance(subunits, bool) or not isinstance(subunits, int):
        raise TypeError(f"subunits are an int, not {type(subunits).__name__}")
    return Decimal(subunits).scaleb(-2)


def signature(raw_body: bytes, secret_key: str) -> str:
    """What Paystack puts in x-paystack-signature: hex HMAC-SHA512 of the body, keyed with the secret key."""
    return hmac.new(secret_key.encode(), raw_body, hashlib.sha512).hexdigest()


def verify_signature(raw_body: bytes, header: str | None, secret_key: str) -> bool:
    """Whether `header` (x-paystack-signature) signs exactly these bytes with `secret_key`.
    Compare the raw body as received: re-serialised JSON is not the same bytes."""
    if not header or not secret_key:
        return False
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(signature(raw_body, secret_key).encode(), given)


# -- errors --------------------------------------------------------------------------------------
class PaystackError(Exception):
    """Paystack refused the request (`status: false`), or answered a refusal we cannot read."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        kind: str | None = None,
        next_step: str | None = None,
    ):
        super().__init__(f"{message} (HTTP {status}{', ' + code if code else ''})")
        self.status, self.message, self.code, self.kind, self.next_step = status, message, code, kind, next_step

    @property
    def retryable(self) -> bool:
        """Only a rate limit: every other refusal stands until the request changes."""
        return self.status == 429

    @property
    def duplicate_reference(self) -> bool:
        """The reference was used before: verify it instead of sending again."""
        return self.code == "duplicate_reference" or self.message == "Duplicate Transaction Reference"

    @property
    def not_found(self) -> bool:
        return self.status == 404 or self.message in (
            "Transaction reference not found",
            "Transaction reference is invalid",
        )

    @property
    def bad_key(self) -> bool:
        return self.status == 401


class PaystackUnavailable(Exception):
    """No usable answer: Paystack could not be reached (`maybe_sent` False: nothing happened) or
    did not answer in time, failed (5xx) or answered what cannot be read (True: it may have)."""

    retryable = True

    def __init__(self, message: str, maybe_sent: bool):
        super().__init__(message)
        self.maybe_sent = maybe_sent


# -- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkout:
    """An initialized transaction: send the customer to `authorization_url`."""

    authorization_url: str
    access_code: str
    reference: str


@dataclass(frozen=True)
class Transaction:
    """A transaction as verify tells it. Trust `status` only with the amount and currency you expected."""

    id: int
    reference: str
    status: str  # abandoned | pending | ongoing | success | failed | reversed ...
    amount: Decimal
    currency: str
    channel: str | None
    gateway_response: str | None
    message: str | None
    paid_at: str | None
    fees: Decimal | None
    receipt_number: str | None
    authorization_code: str | None
    customer_email: str | None
    metadata: Any

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Charge:
    """A charge's step: pay_offline (the customer approves on the phone), pending, success or
    failed; `transaction` when Paystack answered with the whole transaction."""

    reference: str
    status: str
    display_text: str | None = None
    message: str | None = None
    transaction: Transaction | None = None

    @property
    def waiting_on_customer(self) -> bool:
        return self.status in ("pay_offline", "pending", "ongoing", "send_otp", "send_pin", "send_phone")


@dataclass(frozen=True)
class Recipient:
    recipient_code: str
    id: int
    type: str
    name: str
    account_number: str
    bank_code: str
    currency: str


@dataclass(frozen=True)
class Transfer:
    transfer_code: str
    id: int
    reference: str
    status: str  # pending | otp | success | failed | reversed ...
    amount: Decimal
    currency: str
    reason: str | None
    recipient_code: str | None  # known when Paystack shows the whole recipient (verify, webhooks)
    gateway_response: str | None
    transferred_at: str | None

    @property
    def is_final(self) -> bool:
        return self.status in TRANSFER_FINAL


@dataclass(frozen=True)
class Refund:
    id: int
    status: str  # pending | processing | processed | failed | needs-attention
    amount: Decimal
    currency: str
    transaction_reference: str


def international(phone: str) -> str:
    """An M-Pesa number as Paystack takes it, with its plus: 07.., 01.., 254.., +254.. -> +254..."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0") and len(digits) == 10:
        digits = "254" + digits[1:]
    if not (digits.startswith("254") and len(digits) == 12):
        raise ValueError(f"not a Kenyan mobile number: {phone!r}")
    return "+" + digits


def _positive(amount: int | Decimal) -> int:
    subunits = to_subunits(amount)
    if subunits <= 0:
        raise ValueError(f"an amount must be positive, not {amount}")
    return subunits


class PaystackClient:
    def __init__(
        self, secret_key: str, base_url: str = LIVE_URL, timeout: float = 15.0, http: urllib3.PoolManager | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self.timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
        self.http = http or pool_for(self.base_url)

    # -- transactions ------------------------------------------------------------------------
    def initialize(
        self,
        email: str,
        amount: int | Decimal,
        reference: str | None = None,
        callback_url: str | None = None,
        metadata: dict | None = None,
        channels: list[str] | None = None,
    ) -> Checkout:
        """A checkout for `amount` KES. Raises PaystackError (a reused reference:
        `duplicate_reference`) or PaystackUnavailable."""
        payload = {"email": email, "amount": _positive(amount), "currency": CURRENCY}
        _put(payload, reference=reference, callback_url=callback_url, metadata=metadata, channels=channels)
        data = self._call("POST", "/transaction/initialize", payload)
        try:
            return Checkout(str(data["authorization_url"]), str(data["access_code"]), str(data["reference"]))
        except (KeyError, TypeError):
            raise _unreadable("initialize", data) from None

    def verify(self, reference: str) -> Transaction:
        """The transaction now (HTTP 200 whatever became of it: read `status`)."""
        return _transaction(self._call("GET", f"/transaction/verify/{_segment(reference)}"))

    # -- M-Pesa charges ------------------------------------------------------------------------
    def charge_mpesa(
        self, email: str, amount: int | Decimal, phone: str, reference: str | None = None, metadata: dict | None = None
    ) -> Charge:
        """An STK prompt for `amount` KES (whole shillings) on `phone`; normally answered
        pay_offline, the outcome coming by charge.success webhook or by verify (no webhook is
        sent for a failure)."""
        payload = {
            "email": email,
            "amount": _positive(amount),
            "currency": CURRENCY,
            "mobile_money": {"phone": international(phone), "provider": "mpesa"},
        }
        _put(payload, reference=reference, metadata=metadata)
        return _charge(self._call("POST", "/charge", payload))

    def check_charge(self, reference: str) -> Charge:
        """Paystack's "check pending charge" (ask no sooner than 10 seconds after the charge)."""
        return _charge(self._call("GET", f"/charge/{_segment(reference)}"))

    # -- transfers -----------------------------------------------------------------------------
    def create_recipient(
        self,
        name: str,
        account_number: str,
        bank_code: str = "MPESA",
        type: str = "mobile_money",  # noqa: A002  (Paystack's field)
        description: str | None = None,
        email: str | None = None,
        metadata: dict | None = None,
    ) -> Recipient:
        """A recipient (default an M-Pesa wallet: account_number 07...); the same account twice
        answers the first recipient."""
        payload = {
            "type": type,
            "name": name,
            "account_number": account_number,
            "bank_code": bank_code,
            "currency": CURRENCY,
        }
        _put(payload, description=description, email=email, metadata=metadata)
        data = self._call("POST", "/transferrecipient", payload)
        try:
            details = data["details"]
            return Recipient(
                str(data["recipient_code"]),
                int(data["id"]),
                str(data["type"]),
                str(data["name"]),
                str(details["account_number"]),
                str(details["bank_code"]),
                str(data["currency"]),
            )
        except (KeyError, TypeError, ValueError):
            raise _unreadable("recipient", data) from None

    def transfer(
        self,
        amount: int | Decimal,
        recipient_code: str,
        reference: str,
        reason: str | None = None,
        account_reference: str | None = None,
    ) -> Transfer:
        """Pays `amount` KES from the balance to the recipient. `reference` (16-50 of a-z, 0-9,
        '-', '_') is the idempotency key: after PaystackUnavailable, verify_transfer(reference)."""
        payload = {
            "source": "balance",
            "amount": _positive(amount),
            "recipient": recipient_code,
            "reference": reference,
            "currency": CURRENCY,
        }
        _put(payload, reason=reason, account_reference=account_reference)
        return transfer_of(self._call("POST", "/transfer", payload))

    def verify_transfer(self, reference: str) -> Transfer:
        return transfer_of(self._call("GET", f"/transfer/verify/{_segment(reference)}"))

    # -- refunds and balance ------------------------------------------------------------------
    def refund(
        self,
        transaction: str | int,
        amount: int | Decimal | None = None,
        customer_note: str | None = None,
        merchant_note: str | None = None,
    ) -> Refund:
        """Refunds a successful transaction (its reference or id), in full unless `amount` KES is given."""
        payload: dict = {"transaction": transaction}
        _put(
            payload,
            amount=None if amount is None else _positive(amount),
            customer_note=customer_note,
            merchant_note=merchant_note,
        )
        data = self._call("POST", "/refund", payload)
        try:
            return Refund(
                int(data["id"]),
                str(data["status"]),
                from_subunits(int(data["amount"])),
                str(data["currency"]),
                str(data["transaction"]["reference"]),
            )
        except (KeyError, TypeError, ValueError):
            raise _unreadable("refund", data) from None

    def balance(self) -> Decimal:
        """The KES balance transfers are paid from."""
        data = self._call("GET", "/balance")
        try:
            return next(from_subunits(int(row["balance"])) for row in data if row["currency"] == CURRENCY)
        except (KeyError, TypeError, ValueError, StopIteration):
            raise _unreadable("balance", data) from None

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict | None = None):
        """Paystack's `data` from a `status: true` answer. Raises PaystackError or PaystackUnavailable."""
        headers = {"Authorization": f"Bearer {self.secret_key}", "Accept": "application/json"}
        try:
            response = self.http.request(
                method,
                self.base_url + path,
                json=payload,
                headers=headers,
                timeout=self.timeout,
                retries=False,
            )
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as exc:
            raise PaystackUnavailable(f"could not connect to Paystack: {exc}", maybe_sent=False) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise PaystackUnavailable(f"Paystack did not answer in time: {exc}", maybe_sent=True) from exc
        except urllib3.exceptions.HTTPError as exc:  # reset or cut off mid-answer
            raise PaystackUnavailable(f"Paystack connection failed: {exc}", maybe_sent=True) from exc
        status = response.status
        text = response.data.decode("utf-8", "replace")[:TEXT_KEPT].strip()
        if status >= 500:
            raise PaystackUnavailable(f"Paystack answered HTTP {status}: {text or 'empty answer'}", maybe_sent=True)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("status"), bool):
            if 200 <= status < 300:  # it said yes in a way we cannot read: it may have acted
                raise PaystackUnavailable(f"unreadable answer from Paystack (HTTP {status}): {text}", maybe_sent=True)
            raise PaystackError(status, text or f"HTTP {status}")
        if body["status"] is True and 200 <= status < 300:
            return body.get("data")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        raise PaystackError(
            status,
            str(body.get("message") or "no message"),
            _text_or_none(body.get("code")),
            _text_or_none(body.get("type")),
            _text_or_none(meta.get("nextStep") or meta.get("next_step")),
        )


def _put(payload: dict, **optional) -> None:
    payload.update({name: value for name, value in optional.items() if value is not None})


def _segment(reference: str) -> str:
    return quote(str(reference), safe="")


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


def _unreadable(what: str, data) -> PaystackUnavailable:
    return PaystackUnavailable(f"unreadable {what} answer from Paystack: {str(data)[:TEXT_KEPT]}", maybe_sent=True)


def _kes_or_none(value) -> Decimal | None:
    return None if value is None else from_subunits(int(value))


def transaction_of(data) -> Transaction:
    """A transaction object as verify and the charge.success webhook carry it; PaystackUnavailable
    (maybe_sent) when it cannot be read."""
    try:
        authorization = data.get("authorization") or {}
        customer = data.get("customer") or {}
        amount = data["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | str):
            raise TypeError("amount")
        return Transaction(
            id=int(data["id"]),
            reference=str(data["reference"]),
            status=str(data["status"]),
            amount=from_subunits(int(amount)),
            currency=str(data["currency"]),
            channel=_short_text(data.get("channel")),
            gateway_response=_short_text(data.get("gateway_response")),
            message=_short_text(data.get("message")),
            paid_at=_short_text(data.get("paid_at") or data.get("paidAt")),
            fees=_kes_or_none(data.get("fees")),
            receipt_number=_short_text(data.get("receipt_number")),
            authorization_code=_short_text(authorization.get("authorization_code")),
            customer_email=_short_text(customer.get("email")),
            metadata=data.get("metadata"),
        )
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, OverflowError):
        raise _unreadable("transaction", data) from None


_transaction = transaction_of


def _short_text(value) -> str | None:
    """Text Paystack sent, or None for what is not text (a webhook's body is anybody's)."""
    return value[:TEXT_KEPT] if isinstance(value, str) else None


def _charge(data) -> Charge:
    try:
        status = str(data["status"])
        full = "amount" in data and "id" in data
        return Charge(
            reference=str(data["reference"]),
            status=status,
            display_text=data.get("display_text"),
            message=data.get("message"),
            transaction=_transaction(data) if full else None,
        )
    except (KeyError, TypeError, AttributeError):
        raise _unreadable("charge", data) from None


def transfer_of(data) -> Transfer:
    """A transfer as the transfer endpoints and the transfer.* webhooks carry it; PaystackUnavailable
    (maybe_sent) when it cannot be read."""
    try:
        recipient = data.get("recipient")
        return Transfer(
            transfer_code=str(data["transfer_code"]),
            id=int(data["id"]),
            reference=str(data["reference"]),
            status=str(data["status"]),
            amount=from_subunits(int(data["amount"])),
            currency=str(data["currency"]),
            reason=_short_text(data.get("reason")),
            recipient_code=_short_text(recipient.get("recipient_code")) if isinstance(recipient, dict) else None,
            gateway_response=_short_text(data.get("gateway_response")),
            transferred_at=_short_text(data.get("transferred_at")),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise _unreadable("transfer", data) from None
