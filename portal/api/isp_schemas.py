"""The isp document's requests and answers, for the OpenAPI document. The views read the body
field by field (api/isp.py) because the document's errors are exact sentences in a fixed
order ("Missing required fields: client_id, description"); these models state the same rules."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InitiateRequest(BaseModel):
    client_id: str = Field(pattern=UUID_PATTERN, description="An active client's id")
    package_id: str = Field(pattern=UUID_PATTERN, description="One of the client's merchant's active packages")
    phone_number: str = Field(description="The Safaricom number to prompt: +2547..., 2547..., 07... or 01...")
    description: str = Field(min_length=1, max_length=255)


class StatusRequest(BaseModel):
    client_id: str = Field(pattern=UUID_PATTERN)
    checkout_id: str = Field(min_length=1, max_length=64, description="The checkout_id the initiation answered")


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
