"""The isp document's requests and answers. The request models validate the views' bodies
(api/isp.py) and describe them in the OpenAPI document: one model, so the two cannot drift.
The document's errors are exact sentences in a fixed order: missing fields are named first,
all of them ("Missing required fields: client_id, description"), then the first bad field in
the document's order, each in its own words."""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from portal.api.parsing import has_unsafe_characters
from portal.services.phones import InvalidPhone, normalise_safaricom

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_DESCRIPTION = 255
CHECKOUT_ID_PATTERN = r"^[\x21-\x7e]{1,64}$"  # printable ASCII: what Daraja's ids are made of

_UUID = re.compile(UUID_PATTERN)
_CHECKOUT_ID = re.compile(CHECKOUT_ID_PATTERN)


def uuid_or_none(value: Any) -> str | None:
    """A UUID in canonical (lower-case) form, or None."""
    return value.lower() if isinstance(value, str) and _UUID.fullmatch(value) else None


def _uuid(name: str):
    def check(value: Any) -> str:
        found = uuid_or_none(value)
        if found is None:
            raise ValueError(f"Invalid {name} format")
        return found

    return Annotated[str, BeforeValidator(check), WithJsonSchema({"type": "string", "format": "uuid"})]


def _phone(value: Any) -> str:
    try:
        return normalise_safaricom(value)
    except InvalidPhone as exc:
        reason = str(exc)
        raise ValueError(f"Invalid phone_number format: {reason[:1].lower()}{reason[1:]}") from None


def _description(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else None
    if text is None or len(text) > MAX_DESCRIPTION or has_unsafe_characters(text):
        raise ValueError(f"Invalid description: text of 1 to {MAX_DESCRIPTION} characters on one line")
    return text


def _checkout_id(value: Any) -> str:
    if not isinstance(value, str) or not _CHECKOUT_ID.fullmatch(value):
        raise ValueError("Invalid checkout_id format")
    return value


def _missing(data: Any, names: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        missing = [n for n in names if data.get(n) is None or (isinstance(data[n], str) and not data[n].strip())]
        if missing:
            raise ValueError(f"Missing required fields: {', '.join(missing)}")
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IspRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class InitiateRequest(IspRequest):
    client_id: _uuid("client_id") = Field(description="An active client's id")
    package_id: _uuid("package_id") = Field(description="One of the client's merchant's active packages")
    phone_number: Annotated[
        str, BeforeValidator(_phone), WithJsonSchema({"type": "string", "example": "+254712345678"})
    ] = Field(description="The Safaricom number to prompt: +2547..., 2547..., 07... or 01...")
    description: Annotated[
        str,
        BeforeValidator(_description),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION}),
    ]

    @model_validator(mode="before")
    @classmethod
    def _all_there(cls, data: Any) -> Any:
        return _missing(data, ("client_id", "package_id", "phone_number", "description"))


class StatusRequest(IspRequest):
    client_id: _uuid("client_id")
    checkout_id: Annotated[
        str, BeforeValidator(_checkout_id), WithJsonSchema({"type": "string", "pattern": CHECKOUT_ID_PATTERN})
    ] = Field(description="The checkout_id the initiation answered")

    @model_validator(mode="before")
    @classmethod
    def _all_there(cls, data: Any) -> Any:
        return _missing(data, ("client_id", "checkout_id"))


class Initiated(Strict):
    transaction_id: str
    checkout_id: str | None
    message: Literal["Payment initiated successfully"]
    status: Literal["pending", "completed", "failed", "cancelled"]


class PaymentStatus(Strict):
    transaction_id: str
    checkout_id: str | None
    status: Literal["pending", "completed", "failed", "cancelled"]
    amount: int | float
    reference: str = Field(description="PKG-YYYYMMDDHHMMSS-xxxxxx")
    phone_number: str | None = Field(description="+254...")


class IspError(Strict):
    error: str
