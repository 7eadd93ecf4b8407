"""The checkout dialect's models for the OpenAPI document: its query and path parameters (which
also validate them) and its answers, `{"error", "details"}` for every failure."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from portal.api import fields
from portal.api.parsing import has_unsafe_characters

STATUSES = ("PENDING", "SUCCESS", "FAILED")


def _status(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in STATUSES:
        raise ValueError("Status must be one of PENDING, SUCCESS, FAILED")
    return value.upper()


def _checkout_request_id(value: Any) -> str:
    if not isinstance(value, str) or has_unsafe_characters(value) or len(value) > 64:
        raise ValueError("checkout_request_id must be up to 64 printable characters")
    return value


class Parameters(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)


class CheckoutTransactionsQuery(Parameters):
    """GET /transactions: an empty parameter counts as absent."""

    phone: Annotated[str | None, BeforeValidator(fields.safaricom_phone), WithJsonSchema(fields.PHONE_SCHEMA)] = None
    status: Annotated[
        str | None,
        BeforeValidator(_status),
        WithJsonSchema({"type": "string", "enum": list(STATUSES), "description": "Any case"}),
    ] = None
    limit: fields.WholeNumber("limit", 1, 100) = 50
    skip: fields.WholeNumber("skip", 0, 10_000_000) = 0

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        return fields.empty_is_absent(data)


class CheckoutTransactionPath(Parameters):
    checkout_request_id: Annotated[
        str,
        BeforeValidator(_checkout_request_id),
        WithJsonSchema({"type": "string", "pattern": r"^[^/\x00-\x1f\x7f-\x9f]{1,64}$", "example": "ws_CO_0001"}),
    ]


# -- answers -------------------------------------------------------------------------------------


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckoutFieldError(Answer):
    type: Literal["field"]
    value: Any = Field(description="The value sent, echoed back (cut to 500 characters)")
    msg: str
    path: str = Field(description="The field's name; an empty string for the body as a whole")
    location: Literal["body", "query", "params", "headers"]


class CheckoutError(Answer):
    """Every failure: `details` lists the bad fields when validation failed, else says more."""

    error: str
    details: list[CheckoutFieldError] | str | None = None


class CheckoutInitiatedData(Answer):
    checkout_request_id: str | None
    merchant_request_id: str | None
    customer_message: str | None
    status: Literal[STATUSES]  # type: ignore[valid-type]


class CheckoutInitiated(Answer):
    message: str
    data: CheckoutInitiatedData


class CheckoutTransaction(Answer):
    phone: str | None
    amount: int | float = Field(description="Whole KES")
    status: Literal[STATUSES]  # type: ignore[valid-type]
    account_reference: str | None
    transaction_desc: str | None
    created_at: str
    updated_at: str | None
    checkout_request_id: str | None
    merchant_request_id: str | None
    transaction_id: str | None = Field(description="The M-Pesa receipt")
    transaction_date: str | None
    result_code: int | str | None
    result_desc: str | None
    customer_message: str | None


class CheckoutTransactionList(Answer):
    transactions: list[CheckoutTransaction]
    count: int = Field(description="On this page")
    total: int = Field(description="Matching the filter")


class CheckoutHealth(Answer):
    status: Literal["healthy", "unhealthy"]
    timestamp: str
    database: Literal["connected", "disconnected"]
