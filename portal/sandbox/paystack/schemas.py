"""Paystack's request and answer shapes, as the simulator takes and gives them. The request models
are the simulator's validators (`parse`) and the OpenAPI document's description of
/sandbox/paystack is made from them, so the two cannot drift.

A refusal names the first bad field in the model's order, in Paystack's words where they are
known ("Email Address is required", "Invalid Amount Sent"), else "<field> is required" or
"Invalid <field>". What needs the simulator's records (duplicates, recipients, balances) is
checked after."""

import math
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from portal.sandbox.paystack import errors

MAX_SUBUNITS = 10**12  # no real payment is larger; keeps every amount inside a BIGINT
CHANNELS = (
    "card",
    "bank",
    "apple_pay",
    "ussd",
    "qr",
    "mobile_money",
    "bank_transfer",
    "eft",
    "capitec_pay",
    "payattitude",
)
Model = TypeVar("Model", bound=BaseModel)
# Where pydantic names the member of a union that refused a value ("constrained-int", "str",
# "function-after[...]"), it is not part of the field's name.
_UNION_TAG = re.compile(r"[-\[]|^(str|int|float|bool|list|dict|none|literal)$")

# Paystack's own words for a missing or bad field, where they are known; (missing, invalid).
WORDS = {
    "email": ("Email Address is required", "Invalid Email Address Passed"),
    "mobile_money.phone": ("Phone number is required", "Invalid phone number format"),
    "currency": ("Currency is required", "Currency not supported by merchant"),
    "type": ("Recipient type is required", "Recipient type is invalid"),
    "transaction": ("Transaction reference or id is required", "Transaction reference or id is invalid"),
}


def parse(model: type[Model], values: object) -> Model:
    """`values` (anything but an object counts as an empty one) validated by `model`, or
    Paystack's refusal naming the first bad field."""
    try:
        return model.model_validate(values if isinstance(values, dict) else {})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        raise refusal(first["loc"], first["type"] == "missing") from None


def refusal(loc: tuple, is_missing: bool) -> errors.PaystackRefusal:
    path = ".".join(str(part) for part in loc if isinstance(part, str) and not _UNION_TAG.search(part)) or "body"
    if path.split(".")[0] == "amount":
        return errors.invalid_amount()
    if path == "currency" and not is_missing:
        return errors.unsupported_currency()
    if path in WORDS:
        text = WORDS[path][0 if is_missing else 1]
    else:
        text = f"{path} is required" if is_missing else f"Invalid {path}"
    return errors.missing(text) if is_missing else errors.invalid(text)


# -- the rules, one per kind of value --------------------------------------------------------
def _subunits(value: object) -> int:
    """A positive whole number of subunits, sent as a number or a numeric string (Paystack's own
    samples send "20000"): 20000, 20000.0 and "20000" alike; 200.5, "2e4" and true are refused."""
    if isinstance(value, bool):
        raise ValueError("a number")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,13}", value.strip()):
            raise ValueError("whole digits")
        return int(value.strip())
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    raise ValueError("a whole number")


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("printable characters only")
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def text(high: int, low: int = 1):
    return Annotated[str, Field(min_length=low, max_length=high), AfterValidator(_printable)]


Subunits = Annotated[
    int,
    BeforeValidator(_subunits),
    Field(gt=0, le=MAX_SUBUNITS, description="Subunits (KES cents): KES 150 is 15000; a number or numeric string"),
]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$", max_length=254), AfterValidator(_printable)]
Reference = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9.=-]{1,100}$",
        description="Unique per integration: letters, digits, '-', '.' and '=' only",
    ),
]
Currency = Annotated[str, BeforeValidator(_upper), Field(pattern=r"^KES$", description="KES: the only one enabled")]
Url = Annotated[str, Field(pattern=r"^https?://[\x21-\x7e]+$", max_length=2048)]
TransferReference = Annotated[
    str, Field(pattern=r"^[a-z0-9_-]{16,50}$", description="16 to 50 of a-z, 0-9, '-' and '_'")
]
Note = Annotated[text(255, low=0) | None, Field(None)]


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- requests ----------------------------------------------------------------------------------
class InitializeRequest(Request):
    email: Email
    amount: Subunits
    currency: Currency | None = None
    reference: Reference | None = Field(None, description="Generated (10 characters) when not given")
    callback_url: Url | None = Field(None, description="Where the checkout sends the customer: ?trxref=&reference=")
    metadata: Any = Field(None, description="Echoed as sent (an object, usually); cancel_action is honoured")
    channels: list[Literal[CHANNELS]] | None = None  # type: ignore[valid-type]


class MobileMoney(Request):
    phone: Annotated[
        str, Field(pattern=r"^\+254[17][0-9]{8}$", description="+2547... or +2541...: the plus is required")
    ]
    provider: Literal["mpesa"] = Field(description="mpesa: an STK prompt on the phone")


class ChargeRequest(Request):
    email: Email
    amount: Subunits = Field(description="Subunits; M-Pesa moves whole shillings (a multiple of 100)")
    mobile_money: MobileMoney
    currency: Currency | None = None
    reference: Reference | None = Field(None, description="Generated (15 characters) when not given")
    metadata: Any = None


class RecipientRequest(Request):
    type: Literal["mobile_money", "mobile_money_business"] = Field(
        description="mobile_money (an M-Pesa wallet) or mobile_money_business (a till or paybill)"
    )
    name: text(120)
    account_number: Annotated[str, Field(pattern=r"^\+?[0-9]{5,13}$", description="07..., 2547... or a till")]
    bank_code: Literal["MPESA", "MPTILL", "MPPAYBILL"] = Field(
        description="MPESA with mobile_money; MPTILL or MPPAYBILL with mobile_money_business"
    )
    currency: Currency | None = None
    description: Note
    email: Email | None = None
    metadata: Any = None


class TransferRequest(Request):
    source: Literal["balance"] = "balance"
    amount: Subunits
    recipient: Annotated[str, Field(pattern=r"^RCP_[A-Za-z0-9]{1,40}$", description="RCP_...")]
    reference: TransferReference | None = Field(None, description="The transfer's idempotency key")
    reason: Note
    currency: Currency | None = None
    account_reference: text(64) | None = Field(None, description="Required for till and paybill recipients")


def _reference_or_id(value: object) -> object:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


class RefundRequest(Request):
    transaction: Annotated[
        Annotated[int, Field(ge=1, le=2**53)] | Reference,
        BeforeValidator(_reference_or_id),
        Field(description="The transaction's reference, or its id"),
    ]
    amount: Subunits | None = Field(None, description="Subunits; the whole (remaining) amount when not given")
    currency: Currency | None = None
    customer_note: Note
    merchant_note: Note


# -- answers -------------------------------------------------------------------------------------
class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Refused(Answer):
    status: Literal[False]
    message: str
    meta: dict[str, str] | None = None
    type: str | None = None
    code: str | None = None


class Initialized(Answer):
    authorization_url: str
    access_code: str
    reference: str


class Authorization(Answer):
    """Empty ({}) until the transaction is paid."""

    authorization_code: str | None = None
    bin: str | None = None
    last4: str | None = None
    exp_month: str | None = None
    exp_year: str | None = None
    channel: str | None = None
    card_type: str | None = None
    bank: str | None = None
    country_code: str | None = None
    brand: str | None = None
    reusable: bool | None = None
    signature: str | None = None
    account_name: str | None = None
    mobile_money_number: str | None = None


class Customer(Answer):
    id: int
    first_name: str | None
    last_name: str | None
    email: str
    customer_code: str
    phone: str | None
    metadata: dict | None
    risk_action: str
    international_format_phone: str | None


class Transaction(Answer):
    id: int
    domain: Literal["test", "live"]
    status: Literal["abandoned", "failed", "ongoing", "pending", "success", "reversed"]
    reference: str
    receipt_number: str | None
    amount: int
    message: str | None
    gateway_response: str | None
    paid_at: str | None
    created_at: str
    channel: str | None
    currency: str
    ip_address: str | None
    metadata: Any
    log: dict | None
    fees: int | None
    fees_split: dict | None
    authorization: Authorization
    customer: Customer
    plan: dict | None
    split: dict
    order_id: str | None
    paidAt: str | None  # noqa: N815  (Paystack's camelCase twins)
    createdAt: str  # noqa: N815
    requested_amount: int
    pos_transaction_data: dict | None
    source: dict | None
    fees_breakdown: list | None
    connect: dict | None
    transaction_date: str
    plan_object: dict
    subaccount: dict


class ChargeStep(Answer):
    reference: str
    status: Literal["pay_offline", "pending", "failed"]
    display_text: str | None = None
    message: str | None = None


class Recipient(Answer):
    active: bool
    createdAt: str  # noqa: N815
    currency: str
    description: str | None
    domain: Literal["test", "live"]
    email: str | None
    id: int
    integration: int
    metadata: Any
    name: str
    recipient_code: str
    type: str
    updatedAt: str  # noqa: N815
    is_deleted: bool
    isDeleted: bool  # noqa: N815
    details: dict


class Transfer(Answer):
    """A transfer as initiation answers it (recipient is its id) and as verify, fetch and the
    transfer.* webhooks show it (recipient is the whole object, with session and gateway_response)."""

    model_config = ConfigDict(extra="forbid")
    amount: int
    currency: str
    domain: Literal["test", "live"]
    failures: Any
    id: int
    integration: int | dict
    reason: str | None
    reference: str
    source: str
    source_details: Any
    status: Literal["pending", "success", "failed", "reversed", "otp", "abandoned", "blocked", "rejected", "received"]
    titan_code: str | None
    transfer_code: str
    transferred_at: str | None
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    recipient: int | Recipient
    request: int | None = None
    transfersessionid: list | None = None
    transfertrials: list | None = None
    session: dict | None = None
    fee_charged: int | None = None
    gateway_response: str | None = None


class RefundTransaction(Answer):
    id: int
    domain: Literal["test", "live"]
    reference: str
    amount: int
    paid_at: str | None
    channel: str | None
    currency: str
    authorization: dict
    customer: dict
    plan: dict
    subaccount: dict
    split: dict
    order_id: str | None
    paidAt: str | None  # noqa: N815
    pos_transaction_data: dict | None
    source: dict | None
    fees_breakdown: list | None
    connect: dict | None


class Refund(Answer):
    transaction: RefundTransaction
    integration: int
    deducted_amount: int
    channel: str | None
    merchant_note: str | None
    customer_note: str | None
    status: Literal["pending", "processing", "processed", "failed", "needs-attention"]
    refunded_by: str
    expected_at: str
    currency: str
    domain: Literal["test", "live"]
    amount: int
    fully_deducted: bool
    id: int
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815


class Balance(Answer):
    currency: str
    balance: int


def envelope(name: str, data: Any, description: str) -> type[BaseModel]:
    """Paystack's success envelope {"status": true, "message", "data"} around `data`."""
    return create_model(
        name,
        __base__=Answer,
        __doc__=description,
        status=(Literal[True], ...),
        message=(str, ...),
        data=(data, ...),
    )


InitializeAnswer = envelope("PaystackInitialized", Initialized, "Authorization URL created")
TransactionAnswer = envelope("PaystackTransactionAnswer", Transaction, "Verification successful")
ChargeAnswer = envelope("PaystackChargeAnswer", ChargeStep | Transaction, "Charge attempted")
RecipientAnswer = envelope("PaystackRecipientAnswer", Recipient, "Transfer recipient created successfully")
TransferAnswer = envelope("PaystackTransferAnswer", Transfer, "Transfer has been queued")
RefundAnswer = envelope("PaystackRefundAnswer", Refund, "Refund has been queued for processing")
BalanceAnswer = envelope("PaystackBalanceAnswer", list[Balance], "Balances retrieved")
