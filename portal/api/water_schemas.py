"""The water document's requests and answers (shared/seeds/002): the models that validate the
bodies and describe the answers in the OpenAPI document, so the two cannot drift."""

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from portal.api import fields
from portal.api.envelope import Answer, Success
from portal.services.phones import InvalidPhone, normalise_kenyan
from portal.services.water_pricing import Rounding

WholeAmount = Annotated[
    int,
    BeforeValidator(fields.whole_amount),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "description": "Whole Kenya shillings (52 or 52.0, not 52.5), within the merchant's range "
            "(by default 5 to 10,000)",
            "example": 52,
        }
    ),
]


class WaterPreview(BaseModel):
    amount: WholeAmount


class WaterPreviewData(Answer):
    requestedAmount: int
    amount: int
    liters: int
    pricePerLiter: int
    currency: Literal["KES"]
    roundingStrategy: Rounding
    difference: int


class WaterPreviewed(Success):
    data: WaterPreviewData


class WaterTooMany(Answer):
    """The document's 429: `{"success": false, "message"}`, with no error code."""

    success: Literal[False]
    message: str


# -- payments, OTPs and dispensing -------------------------------------------------------------
def _reference(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 40 or fields.has_unsafe_characters(value):
        raise ValueError("transactionReference must be a transaction reference (WS-...)")
    return value


Reference = Annotated[
    str,
    BeforeValidator(_reference),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[^\x00-\x1f\x7f-\x9f]{1,40}$", "example": "WS-1707123456789-ABCD1234"}
    ),
]


def _station_code(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or fields.has_unsafe_characters(value):
        raise ValueError("stationId must be a station's code (STATION001)")
    return value


StationCode = Annotated[
    str,
    BeforeValidator(_station_code),
    WithJsonSchema({"type": "string", "pattern": r"^[^\x00-\x1f\x7f-\x9f]{1,32}$", "example": "STATION001"}),
]
Metadata = fields.Metadata
OtpCode = Annotated[
    str,
    BeforeValidator(lambda v: v if isinstance(v, str) and re.fullmatch(r"[0-9]{6}", v) else _bad_otp()),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{6}$", "example": "123456"}),
]


def _bad_otp():
    raise ValueError("otp must be 6 digits")


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class WaterInitiate(Request):
    phoneNumber: fields.Phone  # noqa: N815  (the document's field names)
    amount: WholeAmount
    metadata: Metadata = {}


class WaterReferencePath(Request):
    reference: Reference


class OtpGenerate(Request):
    transactionReference: Reference  # noqa: N815
    liters: Annotated[int, BeforeValidator(fields.whole_amount), Field(ge=1, le=100_000)] | None = Field(
        None, description="Fewer liters than were paid for, if the merchant wishes; default: all of them"
    )


class StationOtpVerify(Request):
    transactionReference: Reference  # noqa: N815
    otp: OtpCode
    stationId: StationCode | None = None  # noqa: N815  (a station key names its own station)


class StationOtpComplete(Request):
    transactionReference: Reference  # noqa: N815
    stationId: StationCode | None = None  # noqa: N815


class StationOtpStatusQuery(Request):
    stationId: StationCode | None = None  # noqa: N815


class StationWhoamiQuery(Request):
    stationId: StationCode | None = Field(  # noqa: N815
        None, description="The station the caller expects (a kiosk: the code in its address); required with an API key"
    )


class WaterInitiated(Answer):
    success: Literal[True]
    transactionReference: str  # noqa: N815
    checkoutRequestId: str | None  # noqa: N815
    amount: int
    liters: int
    phoneNumber: str  # noqa: N815
    status: str
    message: str


class WaterInitiateAnswer(Success):
    data: WaterInitiated


class WaterTransaction(Answer):
    id: int
    transactionReference: str  # noqa: N815
    phoneNumber: str | None  # noqa: N815
    amount: int
    liters: int | None
    currency: str
    status: str
    checkoutRequestId: str | None  # noqa: N815
    merchantRequestId: str | None  # noqa: N815
    mpesaReceiptNumber: str | None  # noqa: N815
    transactionDate: str | None  # noqa: N815
    resultCode: int | str | None  # noqa: N815
    resultDesc: str | None  # noqa: N815
    metadata: dict
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    paymentMethod: Literal["mpesa", "paystack"]  # noqa: N815
    email: str | None
    paystackStatus: Literal["pending", "success", "failed", "abandoned", "reversed"] | None = Field(  # noqa: N815
        description="A Paystack payment's status in Paystack's words (null for M-Pesa): abandoned once given up"
    )
    paystackChannel: str | None = Field(description="How the customer paid at the checkout: card, mobile_money")  # noqa: N815
    paystackReceiptNumber: str | None  # noqa: N815


class WaterTransactionAnswer(Success):
    data: WaterTransaction


class OtpIssued(Answer):
    otp: str = Field(description="Shown this once; only its HMAC is kept")
    transactionReference: str  # noqa: N815
    liters: int
    expiresAt: str  # noqa: N815
    expiresInMinutes: int  # noqa: N815


class OtpIssuedAnswer(Success):
    data: OtpIssued


class OtpState(Answer):
    exists: bool
    status: str | None = None
    expiresAt: str | None = None  # noqa: N815
    attempts: int | None = None
    maxAttempts: int | None = None  # noqa: N815
    liters: int | None = None
    remainingAttempts: int | None = None  # noqa: N815


class OtpStateAnswer(Success):
    data: OtpState


class StationOtpState(OtpState):
    pulses: int | None = None
    stationId: str | None = None  # noqa: N815
    isLockedToDifferentStation: bool | None = None  # noqa: N815
    canUse: bool | None = None  # noqa: N815


class StationOtpStateAnswer(Success):
    data: StationOtpState


class Dispense(Answer):
    transactionReference: str  # noqa: N815
    stationId: str  # noqa: N815
    liters: int
    pulses: int
    status: str
    verifiedAt: str | None  # noqa: N815
    usedAt: str | None = None  # noqa: N815


class DispenseAnswer(Success):
    data: Dispense


class StationPricing(Answer):
    pricePerLiter: int  # noqa: N815
    currency: Literal["KES"]
    roundingStrategy: Rounding  # noqa: N815
    minAmount: int  # noqa: N815
    maxAmount: int  # noqa: N815


class StationIdentity(Answer):
    stationId: str  # noqa: N815
    name: str
    location: str
    pulsesPerLiter: int  # noqa: N815
    merchantName: str  # noqa: N815
    pricing: StationPricing


class StationIdentityAnswer(Success):
    data: StationIdentity


# -- Paystack payments -----------------------------------------------------------------------
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
)


def _email(value):
    """An ASCII address Paystack takes (stricter than Paystack, so it never refuses one we took)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("email is required for Paystack")
    value = value.strip()
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise ValueError("email must be an email address such as customer@example.com")
    return value


Email = Annotated[
    str,
    BeforeValidator(_email),
    WithJsonSchema(
        {"type": "string", "pattern": f"^{EMAIL.pattern}$", "maxLength": 254, "example": "customer@example.com"}
    ),
]


def _kenyan_phone(value):
    if value is None or value == "":
        return None
    try:
        return normalise_kenyan(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


KenyanPhone = Annotated[
    str | None,
    BeforeValidator(_kenyan_phone),
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "pattern": r"^(?:\+?254|0)[0-9]{9}$",
            "example": "254712345678",
            "description": "A Kenyan number (254..., +254..., 07..., 01...): the code is sent there by SMS",
        }
    ),
]


def _kes(value):
    if value is None:
        return "KES"
    if value != "KES":
        raise ValueError("currency must be KES: the only currency water payments are taken in")
    return value


Kes = Annotated[str, BeforeValidator(_kes), WithJsonSchema({"type": ["string", "null"], "enum": ["KES", None]})]


class WaterPaystackInitialize(Request):
    email: Email
    amount: WholeAmount
    phoneNumber: KenyanPhone = None  # noqa: N815
    currency: Kes = "KES"
    metadata: Metadata = {}


class WaterPaystackStarted(Answer):
    transactionReference: str  # noqa: N815
    authorizationUrl: str = Field(description="Send the customer's browser here: Paystack's hosted checkout")  # noqa: N815
    accessCode: str  # noqa: N815
    status: str
    expiresAt: str = Field(description="When an unpaid checkout is given up (timeout)")  # noqa: N815
    amount: int
    liters: int


class WaterPaystackStartedAnswer(Success):
    data: WaterPaystackStarted


class WaterPaystackCallbackQuery(Request):
    reference: Reference
    trxref: str | None = Field(None, description="Paystack sends the reference twice; this copy is ignored")


class WaterPaystackCallback(Answer):
    reference: str
    verifyUrl: str  # noqa: N815


class WaterPaystackCallbackAnswer(Success):
    data: WaterPaystackCallback
