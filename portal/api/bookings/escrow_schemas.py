"""The release-escrow request and answer of the bookings document: the models that validate the
body and describe the answer in the OpenAPI document."""

from functools import partial
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from portal.api.bookings.schemas import BookingPhone
from portal.api.envelope import Answer, Success
from portal.api.fields import Kes, text, text_schema

MAX_KES = 10**9  # past any booking; keeps what is parsed small
Cents = Kes(0, MAX_KES, "KES, at most two decimal places (whole shillings when the payout goes by M-Pesa B2C)")
BookingId = Annotated[
    str, BeforeValidator(partial(text, name="bookingId", longest=100)), WithJsonSchema(text_schema(100))
]


class ReleaseEscrow(BaseModel):
    bookingId: BookingId  # noqa: N815  (the document's field names)
    teacherPhone: BookingPhone  # noqa: N815
    amount: Cents = Field(description="KES to pay the teacher: at most what is held; the rest stays with the merchant")


class EscrowRelease(Answer):
    bookingId: str  # noqa: N815
    amount: int | float = Field(description="KES paid to the teacher")
    teacherPhone: str = Field(pattern=r"^254[0-9]{9}$")  # noqa: N815
    releasedAt: int = Field(description="When the release was made, epoch milliseconds")  # noqa: N815
    status: Literal["releasing"] = Field(description="The payout settles after: the escrow is then released or failed")


class EscrowReleased(Success):
    data: EscrowRelease
