"""The release-escrow request and answer of the bookings document: the models that validate the
body and describe the answer in the OpenAPI document."""

import math
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from portal.api.bookings.schemas import TypedPhone
from portal.api.envelope import Answer, Success
from portal.api.fields import text, text_schema
from portal.services.phones import InvalidPhone, normalise_safaricom

MAX_KES = 10**9  # past any booking; keeps what is parsed small


def kes_to_cents(value: Any) -> int:
    """A JSON number of KES, more than zero, with at most two decimal places: its cents."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Amount must be a number of KES")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Amount must be a finite number")
    if not 0 < value <= MAX_KES:
        raise ValueError(f"Amount must be more than 0 and at most {MAX_KES:,} KES")
    cents = Decimal(repr(value) if isinstance(value, float) else value) * 100
    if cents != cents.to_integral_value():
        raise ValueError("Amount must have at most two decimal places (KES and cents)")
    return int(cents)


def teacher_phone(value: Any) -> str:
    try:
        return normalise_safaricom(value, short_form=True)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


Cents = Annotated[
    int,
    BeforeValidator(kes_to_cents),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_KES,
            "description": "KES, at most two decimal places (whole shillings when the payout goes by M-Pesa B2C)",
            "example": 5000,
        }
    ),
]
BookingId = Annotated[
    str, BeforeValidator(partial(text, name="bookingId", longest=100)), WithJsonSchema(text_schema(100))
]


class ReleaseEscrow(BaseModel):
    bookingId: BookingId  # noqa: N815  (the document's field names)
    teacherPhone: Annotated[TypedPhone, BeforeValidator(teacher_phone)]  # noqa: N815
    amount: Cents = Field(description="KES to pay the teacher: at most what is held; the rest stays with the merchant")


class EscrowRelease(Answer):
    bookingId: str  # noqa: N815
    amount: int | float = Field(description="KES paid to the teacher")
    teacherPhone: str = Field(pattern=r"^254[0-9]{9}$")  # noqa: N815
    releasedAt: int = Field(description="When the release was made, epoch milliseconds")  # noqa: N815
    status: Literal["releasing"] = Field(description="The payout settles after: the escrow is then released or failed")


class EscrowReleased(Success):
    data: EscrowRelease
