"""Daraja's request and answer shapes, as the simulator takes and gives them: the OpenAPI
document's description of /sandbox/daraja. Daraja's rules are checked by stk.py and oauth.py,
field by field with Daraja's error codes; these models say the same rules as schemas."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SHORTCODE = r"^[0-9]{5,7}$"
MSISDN = r"^254[0-9]{9}$"
TIMESTAMP = r"^[0-9]{14}$"


class OAuthQuery(BaseModel):
    grant_type: Literal["client_credentials"]


class Credentials(BaseModel):
    BusinessShortCode: str = Field(pattern=SHORTCODE, examples=["174379"])
    Password: str = Field(min_length=1, description="base64(BusinessShortCode + passkey + Timestamp)")
    Timestamp: str = Field(pattern=TIMESTAMP, description="YYYYMMDDHHMMSS")


class StkPushRequest(Credentials):
    TransactionType: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
    Amount: int = Field(ge=1, le=250_000)
    PartyA: str = Field(pattern=MSISDN)
    PartyB: str = Field(pattern=SHORTCODE)
    PhoneNumber: str = Field(pattern=MSISDN)
    CallBackURL: str = Field(pattern=r"^https?://\S+$")
    AccountReference: str = Field(min_length=1, max_length=12)
    TransactionDesc: str = Field("", max_length=13)


class StkQueryRequest(Credentials):
    CheckoutRequestID: str


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(Answer):
    access_token: str
    expires_in: str = Field(description="Seconds, as a string (Daraja's way)")


class StkPushAccepted(Answer):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResponseCode: Literal["0"]
    ResponseDescription: str
    CustomerMessage: str


class StkQueryAnswer(Answer):
    ResponseCode: Literal["0"]
    ResponseDescription: str
    MerchantRequestID: str
    CheckoutRequestID: str
    ResultCode: str
    ResultDesc: str | None


class DarajaError(Answer):
    requestId: str  # noqa: N815  (Daraja's field names)
    errorCode: str  # noqa: N815
    errorMessage: str  # noqa: N815
