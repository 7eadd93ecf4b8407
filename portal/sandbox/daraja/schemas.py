"""Daraja's request and answer shapes, as the simulator takes and gives them. The request models
are the simulator's validators (`parse`), and the OpenAPI document's description of
/sandbox/daraja is made from them, so the two cannot drift.

A refusal is Daraja's `400.002.02 Bad Request - Invalid <Field>`, naming the first bad field in
the model's order. Hostile values (wrong types, control characters, lone surrogates,
non-finite numbers) are refused like any other bad value. What needs the simulator's records
(credentials, duplicates, which fields a version or command requires) is checked after."""

import math
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from portal.sandbox.daraja.errors import invalid

SHORTCODE = r"^[0-9]{5,7}$"
MSISDN = r"^254[0-9]{9}$"
TIMESTAMP = r"^[0-9]{14}$"
URL = r"^https?://[\x21-\x7e]+$"  # printable ASCII, no spaces (Daraja refuses a stray space)
MAX_AMOUNT = 250_000  # per transaction, KES (reference §9.5)
# Daraja refuses C2B URLs with these words, and the usual tunnels and request testers (reference §6.1).
FORBIDDEN_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "cmd", "sql", "query")  # "exe" covers "exec"
FORBIDDEN_HOSTS = ("ngrok", "mockbin", "requestbin")

Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], values: object) -> Model:
    """`values` validated by `model`, or Daraja's refusal naming the first bad field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        raise invalid(str(first["loc"][0]) if first["loc"] else model.__name__) from None


# -- the rules, one per kind of value --------------------------------------------------------
def _number_or_string(value: object) -> str:
    """Daraja takes codes and numbers as JSON numbers or strings (never true or false)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("a number or a string")
    return str(value)


def _whole(value: object) -> int:
    """A whole number, sent as a number or a numeric string: 100, 100.0 and "100" alike."""
    if isinstance(value, bool):
        raise ValueError("a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError("a number") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError("a whole number")
    return int(number)


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("printable characters only")
    return value


def _real_time(value: str) -> str:
    datetime.strptime(value, "%Y%m%d%H%M%S")  # ValueError for month 13 and the like
    return value


def _allowed_by_daraja(value: str) -> str:
    lowered = value.lower()
    if any(word in lowered for word in FORBIDDEN_WORDS + FORBIDDEN_HOSTS):
        raise ValueError("a word Daraja refuses in URLs")
    return value


def _blank_is_absent(value: object) -> object:
    return None if value == "" else value  # clients send the unused one of two ids empty


Shortcode = Annotated[str, BeforeValidator(_number_or_string), Field(pattern=SHORTCODE, examples=["174379"])]
Msisdn = Annotated[str, BeforeValidator(_number_or_string), Field(pattern=MSISDN, examples=["254708374149"])]
Party = Annotated[
    str,
    BeforeValidator(_number_or_string),
    Field(pattern=r"^([0-9]{5,7}|254[0-9]{9})$", description="A shortcode or a subscriber's MSISDN"),
]
Url = Annotated[str, Field(pattern=URL, max_length=2048)]
C2bUrl = Annotated[Url, AfterValidator(_allowed_by_daraja)]
Timestamp = Annotated[str, Field(pattern=TIMESTAMP, description="YYYYMMDDHHMMSS"), AfterValidator(_real_time)]


def amount(low: int = 1, high: int = MAX_AMOUNT):
    return Annotated[int, BeforeValidator(_whole), Field(ge=low, le=high, description="Whole shillings")]


def text(high: int, low: int = 1):
    return Annotated[str, Field(min_length=low, max_length=high), AfterValidator(_printable)]


OptionalId = Annotated[text(64) | None, BeforeValidator(_blank_is_absent)]


# -- requests ----------------------------------------------------------------------------------
class OAuthQuery(BaseModel):
    grant_type: Literal["client_credentials"]


class Credentials(BaseModel):
    BusinessShortCode: Shortcode
    Timestamp: Timestamp
    Password: str = Field(min_length=1, description="base64(BusinessShortCode + passkey + Timestamp)")


class StkPushRequest(Credentials):
    TransactionType: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
    Amount: amount()
    PartyA: Msisdn
    PhoneNumber: Msisdn
    PartyB: Shortcode
    CallBackURL: Url
    AccountReference: text(12)
    TransactionDesc: text(13, low=0) = ""


class StkQueryRequest(Credentials):
    CheckoutRequestID: text(64)


class C2bRegisterRequest(BaseModel):
    ShortCode: Shortcode
    ResponseType: Literal["Completed", "Cancelled"]
    ConfirmationURL: C2bUrl = Field(description="Refused if it holds words like mpesa, safaricom, sql")
    ValidationURL: C2bUrl


class C2bSimulateRequest(BaseModel):
    ShortCode: Shortcode
    CommandID: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
    Amount: amount()
    Msisdn: Msisdn
    BillRefNumber: text(20) | None = Field(None, description="The account the customer typed: a paybill needs it")


class B2cRequest(BaseModel):
    OriginatorConversationID: text(64) | None = Field(None, description="Required on v3, unique per app")
    InitiatorName: text(64)
    SecurityCredential: text(4096) = Field(
        description="The initiator password, RSA-encrypted to the certificate, base64"
    )
    CommandID: Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"]
    Amount: amount() = Field(description="Whole shillings; under 10 is accepted and refused by its Result (code 2)")
    PartyA: Shortcode
    PartyB: Msisdn
    Remarks: text(100, low=2)
    QueueTimeOutURL: Url
    ResultURL: Url
    Occassion: text(100, low=0) | None = Field(None, description="Daraja's spelling; Occasion is taken too")
    Occasion: text(100, low=0) | None = None

    @property
    def occasion(self) -> str | None:
        return self.Occassion if "Occassion" in self.model_fields_set else self.Occasion


class TransactionStatusRequest(BaseModel):
    Initiator: text(64)
    SecurityCredential: text(4096)
    CommandID: Literal["TransactionStatusQuery"]
    TransactionID: OptionalId = Field(None, description="The M-Pesa receipt; or give OriginalConversationID")
    OriginalConversationID: OptionalId = None
    OriginatorConversationID: OptionalId = Field(None, description="The name some libraries use for the one above")
    PartyA: Party
    IdentifierType: Annotated[Literal["1", "2", "4"], BeforeValidator(_number_or_string)] = Field(
        description="1 MSISDN, 2 till number, 4 organisation shortcode"
    )
    ResultURL: Url
    QueueTimeOutURL: Url
    Remarks: text(100, low=0) | None = None
    Occasion: text(100, low=0) | None = None

    @property
    def original(self) -> str | None:
        if "OriginalConversationID" in self.model_fields_set:
            return self.OriginalConversationID
        return self.OriginatorConversationID


# -- answers -------------------------------------------------------------------------------------
class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(Answer):
    access_token: str
    expires_in: str = Field(description="Seconds, as a string (Daraja's way)")


class StkPushAccepted(Answer):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResponseCode: Literal["0"]
    ResponseDescription: str
    CustomerMessage: str


class StkQueryAnswer(Answer):
    ResponseCode: Literal["0"]
    ResponseDescription: str
    MerchantRequestID: str
    CheckoutRequestID: str
    ResultCode: str
    ResultDesc: str | None


class DarajaError(Answer):
    requestId: str  # noqa: N815  (Daraja's field names)
    errorCode: str  # noqa: N815
    errorMessage: str  # noqa: N815


class C2bAccepted(Answer):
    OriginatorCoversationID: str = Field(description="Daraja's own misspelling")
    ResponseCode: Literal["0"]
    ResponseDescription: str


class AsyncAccepted(Answer):
    ConversationID: str
    OriginatorConversationID: str
    ResponseCode: Literal["0"]
    ResponseDescription: str
