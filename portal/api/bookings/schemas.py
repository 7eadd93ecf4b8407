"""The bookings document's requests and answers: the models that validate the bodies and
describe the answers in the OpenAPI document, so the two cannot drift."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from portal.api.envelope import Answer, Success


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
