"""The water document's requests and answers (shared/seeds/002): the models that validate the
bodies and describe the answers in the OpenAPI document, so the two cannot drift."""

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, WithJsonSchema

from portal.api import fields
from portal.api.envelope import Answer, Success
from portal.services.water_pricing import Rounding

WholeAmount = Annotated[
    int,
    BeforeValidator(fields.whole_amount),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "description": "Whole Kenya shillings (52 or 52.0, not 52.5), within the merchant's range "
            "(by default 5 to 10,000)",
            "example": 52,
        }
    ),
]


class WaterPreview(BaseModel):
    amount: WholeAmount


class WaterPreviewData(Answer):
    requestedAmount: int
    amount: int
    liters: int
    pricePerLiter: int
    currency: Literal["KES"]
    roundingStrategy: Rounding
    difference: int


class WaterPreviewed(Success):
    data: WaterPreviewData


class WaterTooMany(Answer):
    """The document's 429: `{"success": false, "message"}`, with no error code."""

    success: Literal[False]
    message: str
