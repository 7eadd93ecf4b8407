"""The bookings document's requests and answers: the models that validate the bodies and
describe the answers in the OpenAPI document, so the two cannot drift."""

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from portal.api import fields
from portal.api.envelope import Answer, Success
from portal.services.phones import InvalidPhone, normalise_safaricom


def _typed_phone(value: Any) -> str:
    """A number may come as a string or as a JSON integer; anything else is not a phone number."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("phone must be a string of digits")
    return str(value)


TypedPhone = Annotated[
    str,
    BeforeValidator(_typed_phone),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "description": "A Safaricom number as people type it: 0712345678, +254712345678, 254712345678 or 712345678",
            "example": "0712345678",
        }
    ),
]


class ValidatePhone(BaseModel):
    phone: TypedPhone


class PhoneValidation(Answer):
    originalPhone: str  # noqa: N815  (the document's field names)
    formattedPhone: str = Field(pattern=r"^254[0-9]{9}$")  # noqa: N815
    country: Literal["Kenya"]
    provider: Literal["Safaricom MPesa"]


class PhoneValidated(Success):
    data: PhoneValidation


# -- payments ----------------------------------------------------------------------------------
def _booking_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("bookingId must be text (your booking's id)")
    return fields.text(str(value), name="bookingId", longest=100)


BookingId = Annotated[
    str,
    BeforeValidator(_booking_id),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 100, "example": "booking_123"}),
]


def _safaricom(value: Any) -> str:
    try:
        return normalise_safaricom(_typed_phone(value), short_form=True)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


BookingPhone = Annotated[
    str,
    BeforeValidator(_safaricom),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "description": "A Safaricom number: 0712345678, +254712345678, 254712345678 or 712345678",
            "example": "0712345678",
        }
    ),
]
# Paystack's smallest KES payment is 3.00; M-Pesa's largest is 250,000
CheckoutAmount = fields.Kes(3, 1_000_000)
MpesaAmount = fields.Shillings(3, 250_000)


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


def _callback_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 500 or fields.has_unsafe_characters(value):
        raise ValueError("callbackUrl must be an http(s) URL of at most 500 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError("callbackUrl must be an http(s) URL of at most 500 characters")
    return value


CallbackUrl = Annotated[
    str | None,
    BeforeValidator(_callback_url),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "maxLength": 500,
            "description": "Where Paystack's checkout sends the payer afterwards (?trxref=&reference=); "
            "default: your Paystack dashboard's callback URL",
        }
    ),
]


class Initialize(Request):
    email: fields.Email
    amount: CheckoutAmount
    bookingId: BookingId  # noqa: N815  (the document's field names)
    metadata: fields.Metadata = {}
    callbackUrl: CallbackUrl = None  # noqa: N815


class MpesaCharge(Request):
    phone: BookingPhone
    amount: MpesaAmount
    email: fields.Email
    bookingId: BookingId  # noqa: N815
    metadata: fields.Metadata = {}


class DirectCharge(Request):
    phone: BookingPhone
    amount: MpesaAmount
    email: fields.Email
    bookingId: BookingId | None = None  # noqa: N815


class Retry(Request):
    phone: BookingPhone | None = Field(None, description="Prompt this phone (default: the failed payment's)")
    email: fields.Email | None = None


class Cancel(Request):
    reason: Annotated[
        str | None,
        BeforeValidator(lambda v: fields.text(v, name="reason", longest=200)),
        WithJsonSchema(fields.text_schema(200)),
    ] = None


class ReferencePath(Request):
    reference: Annotated[
        str,
        BeforeValidator(lambda v: _path_text(v, "reference")),
        WithJsonSchema({"type": "string", "maxLength": 40, "example": "mpesa_abc123"}),
    ]


class UserPath(Request):
    userId: Annotated[  # noqa: N815
        str,
        BeforeValidator(lambda v: _path_text(v, "userId", 100)),
        WithJsonSchema({"type": "string", "maxLength": 100, "example": "user_456"}),
    ]


def _path_text(value: Any, name: str, longest: int = 40) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= longest or fields.has_unsafe_characters(value):
        raise ValueError(f"{name} must be 1 to {longest} printable characters")
    return value


class HistoryQuery(Request):
    limit: fields.WholeNumber("limit", 1, 100) = 50
    offset: fields.WholeNumber("offset", 0, 1_000_000) = 0
    status: Literal["pending", "success", "failed", "cancelled"] | None = None

    _empty = model_validator(mode="before")(fields.empty_is_absent)


class Initialized(Answer):
    reference: str
    access_code: str
    authorization_url: str


class Charged(Answer):
    reference: str
    status: Literal["pending", "success", "failed", "cancelled"]
    display_text: str


class Verified(Answer):
    status: Literal["pending", "success", "failed", "cancelled"]
    amount: float
    reference: str
    paid_at: str | None
    channel: str | None


class BookingPayment(Answer):
    reference: str
    bookingId: str | None  # noqa: N815
    email: str | None
    phone: str | None
    amount: float
    status: Literal["pending", "success", "failed", "cancelled"]
    paymentMethod: Literal["mpesa", "card", "paystack"]  # noqa: N815
    createdAt: int  # noqa: N815
    completedAt: int | None  # noqa: N815


class Retried(Answer):
    originalReference: str  # noqa: N815
    newReference: str  # noqa: N815
    retryCount: int  # noqa: N815


class Cancelled(Answer):
    reference: str
    cancelledAt: int  # noqa: N815


class HistoryItem(Answer):
    reference: str
    amount: float
    status: Literal["pending", "success", "failed", "cancelled"]
    createdAt: int  # noqa: N815
    bookingId: str | None  # noqa: N815


class History(Answer):
    transactions: list[HistoryItem]
    total: int
    limit: int
    offset: int


class InitializedAnswer(Success):
    data: Initialized


class ChargedAnswer(Success):
    data: Charged


class VerifiedAnswer(Success):
    data: Verified


class StatusAnswer(Success):
    data: BookingPayment


class RetriedAnswer(Success):
    data: Retried


class CancelledAnswer(Success):
    data: Cancelled


class HistoryAnswer(Success):
    data: History
