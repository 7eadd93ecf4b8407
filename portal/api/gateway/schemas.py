"""The gateway's request models: they validate the requests and, through their JSON schemas,
describe them in the OpenAPI document. Field names are the document's (camelCase)."""

from typing import Annotated, Any

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
