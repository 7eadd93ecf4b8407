"""The gateway's request models: they validate the requests and, through their JSON schemas,
describe them in the OpenAPI document; and its answers' models, for the document. Field names
are the document's (camelCase)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from portal.api import envelope, fields
from portal.api.parsing import has_unsafe_characters
from portal.models import PaymentStatus

# Daraja's limits per product (whole shillings): M-Pesa Express and C2B from 1, B2C from 10,
# all up to the per-transaction maximum of 250,000.
MAX_AMOUNT = 250_000


def _text(name: str, longest: int, default: str | None = None):
    return Annotated[
        str | None,
        BeforeValidator(lambda v: fields.text(v, name=name, default=default, longest=longest)),
        WithJsonSchema(fields.text_schema(longest)),
    ]


AccountReference = Annotated[
    str,
    BeforeValidator(fields.account_reference),
    WithJsonSchema(fields.REFERENCE_SCHEMA),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class StkPush(Request):
    phoneNumber: fields.Phone  # noqa: N815  (the document's field names)
    amount: fields.Shillings(1, MAX_AMOUNT)
    accountReference: AccountReference = "Payment"  # noqa: N815
    transactionDesc: _text("transactionDesc", 100, "Payment") = "Payment"  # noqa: N815


class StkQuery(Request):
    checkoutRequestId: Annotated[  # noqa: N815
        str,
        BeforeValidator(lambda v: _provider_id(v, "checkoutRequestId")),
        WithJsonSchema({"type": "string", "maxLength": 64, "example": "ws_CO_191220191020363925"}),
    ] = Field(description="The CheckoutRequestID Daraja gave the push")


def _provider_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isascii() or not value.isprintable():
        raise ValueError(f"{name} must be 1 to 64 printable ASCII characters")
    return value


def _one_of(name: str, allowed: tuple[str, ...]):
    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        return value

    return Annotated[str | None, BeforeValidator(check), WithJsonSchema({"type": "string", "enum": list(allowed)})]


def _search(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > 100 or has_unsafe_characters(value):
        raise ValueError("search must be up to 100 characters, without control characters")
    return value


TYPES = {"STK_PUSH": "stk_push", "C2B": "c2b", "B2C": "b2c"}  # the document's names of the ledger's kinds
MAX_LIMIT = 100
# A payout's own words for the states it uses (services/mpesa/b2c.py), also taken as filters.
PAYOUT_STATUSES = {"queued": PaymentStatus.PENDING, "sent": PaymentStatus.PROCESSING}


class GatewayTransactionsQuery(Request):
    """GET /api/transactions: an empty parameter counts as absent."""

    page: fields.WholeNumber("page", 1, 100_000) = 1
    limit: fields.WholeNumber("limit", 1, MAX_LIMIT) = 20
    type: _one_of("type", tuple(TYPES)) = None
    status: _one_of("status", PaymentStatus.ALL + tuple(PAYOUT_STATUSES)) = None
    search: Annotated[
        str | None,
        BeforeValidator(_search),
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": 100,
                "description": "Phone (any typed form), reference, account reference or receipt",
            }
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        return fields.empty_is_absent(data)


# -- answers (the OpenAPI document's response models) -------------------------------------------


class GatewayTransaction(envelope.Answer):
    id: int
    type: str = Field(description="STK_PUSH, C2B or B2C")
    status: Literal[PaymentStatus.ALL + tuple(PAYOUT_STATUSES)] = Field(  # type: ignore[valid-type]
        description="The ledger's status; a payout (B2C) says queued, sent, completed or failed"
    )
    amount: int | float = Field(description="In whole currency units")
    currency: str
    phoneNumber: str | None  # noqa: N815  (the document's field names)
    reference: str
    accountReference: str | None  # noqa: N815
    transactionDesc: str | None  # noqa: N815
    mpesaReceiptNumber: str | None  # noqa: N815
    checkoutRequestId: str | None  # noqa: N815
    merchantRequestId: str | None  # noqa: N815
    conversationId: str | None  # noqa: N815
    resultCode: str | None  # noqa: N815
    resultDesc: str | None  # noqa: N815
    api: str = Field(description="The API that created the payment")
    createdAt: str  # noqa: N815
    updatedAt: str | None  # noqa: N815
    completedAt: str | None  # noqa: N815


class Pushed(envelope.Success):
    data: GatewayTransaction


class OneTransaction(envelope.Success):
    data: GatewayTransaction


class Pagination(envelope.Answer):
    page: int
    limit: int
    total: int
    totalPages: int  # noqa: N815


class TransactionPage(envelope.Success):
    data: list[GatewayTransaction]
    pagination: Pagination


class QueryResult(envelope.Answer):
    ResultCode: str | None = Field(description="Daraja's ResultCode; null while the customer has not answered")  # noqa: N815
    ResultDesc: str | None  # noqa: N815
    pending: bool
    applied: bool = Field(description="Whether this answer changed the payment")
    transaction: GatewayTransaction


class Queried(envelope.Success):
    data: QueryResult


class GatewayHealthData(envelope.Answer):
    status: Literal["healthy", "unhealthy"]
    database: Literal["connected", "disconnected"]
    redis: Literal["connected", "disconnected"]
    timestamp: str


class GatewayHealthy(envelope.Success):
    data: GatewayHealthData


class GatewayUnhealthy(envelope.Failure):
    data: GatewayHealthData


# -- retry queue and dead letters --------------------------------------------------------------
class DeadLetterQuery(Request):
    """GET /api/dead-letter: an empty parameter counts as absent."""

    page: fields.WholeNumber("page", 1, 100_000) = 1
    limit: fields.WholeNumber("limit", 1, MAX_LIMIT) = 20
    status: _one_of("status", ("failed", "retrying", "resolved")) = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        return fields.empty_is_absent(data)


class QueueFigures(envelope.Answer):
    name: str
    queued: int
    scheduled: int
    started: int
    failed: int


class DeadLetterCounts(envelope.Answer):
    unresolved: int
    retrying: int
    resolved: int
    retried: int
    total: int


class RetryQueueFigures(envelope.Answer):
    queues: list[dict] | None = Field(description="Each shared queue's counts; null while Redis is unreachable")
    deadLetters: DeadLetterCounts  # noqa: N815


class RetryQueueStats(envelope.Success):
    data: RetryQueueFigures


class JobError(envelope.Answer):
    type: str | None
    message: str | None


class DeadLetterRow(envelope.Answer):
    id: int
    name: str
    description: str
    arguments: Any
    queue: str | None
    jobId: str | None  # noqa: N815
    paymentId: int | None  # noqa: N815
    error: JobError
    attempts: int
    status: Literal["failed", "retrying", "resolved"]
    retryCount: int  # noqa: N815
    createdAt: str | None  # noqa: N815
    failedAt: str | None  # noqa: N815
    retriedAt: str | None  # noqa: N815
    resolvedAt: str | None  # noqa: N815


class DeadLetterPage(envelope.Success):
    data: list[DeadLetterRow]
    pagination: Pagination


class DeadLetterRetried(envelope.Success):
    data: DeadLetterRow


class DeadLetterRefused(envelope.Failure):
    data: DeadLetterRow | None = None


# -- C2B and B2C ---------------------------------------------------------------------------------
B2C_MINIMUM = 10


def _accounts(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 1000:
        raise ValueError("accounts must be a list of at most 1,000 account numbers")
    return [_account(item) for item in value]


def _account(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 20 or not value.isprintable():
        raise ValueError("each account number must be text of 1 to 20 printable characters")
    return value.strip()


class C2bRegister(Request):
    responseType: Literal["Completed", "Cancelled"] = Field(  # noqa: N815
        "Completed", description="What M-Pesa does with a payment when our validation cannot be reached"
    )
    accounts: Annotated[
        list[str] | None,
        BeforeValidator(_accounts),
        WithJsonSchema({"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 1000}),
    ] = Field(None, description="Account numbers the merchant accepts (validation refuses others); [] accepts any")


class C2bSimulate(Request):
    msisdn: fields.Phone
    amount: fields.Shillings(1, MAX_AMOUNT)
    billRefNumber: Annotated[  # noqa: N815
        str,
        BeforeValidator(_account),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 20, "example": "Invoice001"}),
    ] = Field(description="The account number the customer types (M-Pesa needs one for a paybill)")


class B2c(Request):
    phoneNumber: fields.Phone  # noqa: N815
    amount: fields.Shillings(B2C_MINIMUM, MAX_AMOUNT)
    remarks: Annotated[
        str,
        BeforeValidator(lambda v: _remarks(v)),
        WithJsonSchema({"type": "string", "minLength": 2, "maxLength": 100}),
    ]
    occasion: _text("occasion", 100) = None


def _remarks(value: Any) -> str:
    text = fields.text(value, name="remarks", longest=100)
    if text is None or len(text) < 2:
        raise ValueError("remarks must be text of 2 to 100 characters")
    return text


class C2bRegistered(envelope.Answer):
    shortCode: str | None  # noqa: N815
    responseType: Literal["Completed", "Cancelled"]  # noqa: N815
    validationUrl: str  # noqa: N815
    confirmationUrl: str  # noqa: N815
    accounts: list[str]
    originatorConversationId: str  # noqa: N815


class C2bRegisteredAnswer(envelope.Success):
    data: C2bRegistered


class C2bSimulated(envelope.Answer):
    originatorConversationId: str  # noqa: N815
    msisdn: str
    amount: int


class C2bSimulatedAnswer(envelope.Success):
    data: C2bSimulated


class PayoutQueued(envelope.Success):
    data: GatewayTransaction
