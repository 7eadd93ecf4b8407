"""The gateway's request models: they validate the requests and, through their JSON schemas,
describe them in the OpenAPI document. Field names are the document's (camelCase)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from portal.api import fields

# Daraja's limits per product (whole shillings): M-Pesa Express and C2B from 1, B2C from 10,
# all up to the per-transaction maximum of 250,000.
MAX_AMOUNT = 250_000


def _text(name: str, longest: int, default: str | None = None):
    return Annotated[
        str | None,
        BeforeValidator(lambda v: fields.text(v, name=name, default=default, longest=longest)),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": longest}),
    ]


AccountReference = Annotated[
    str,
    BeforeValidator(fields.account_reference),
    WithJsonSchema({"type": "string", "pattern": fields.REFERENCE.pattern, "example": "Order123"}),
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
        str | None,
        BeforeValidator(lambda v: None if v is None else _account(v)),
        WithJsonSchema({"type": "string", "maxLength": 20, "example": "Invoice001"}),
    ] = None


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
