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


URL = r"^https?://\S+$"


class C2bRegisterRequest(BaseModel):
    ShortCode: str = Field(pattern=SHORTCODE)
    ResponseType: Literal["Completed", "Cancelled"]
    ConfirmationURL: str = Field(pattern=URL, description="Refused if it holds words like mpesa, safaricom, sql")
    ValidationURL: str = Field(pattern=URL)


class C2bSimulateRequest(BaseModel):
    ShortCode: str | int
    CommandID: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
    Amount: int = Field(ge=1, le=250_000)
    Msisdn: str | int
    BillRefNumber: str | None = Field(None, max_length=20)


class C2bAccepted(Answer):
    OriginatorCoversationID: str = Field(description="Daraja's own misspelling")
    ResponseCode: Literal["0"]
    ResponseDescription: str


class B2cRequest(BaseModel):
    OriginatorConversationID: str | None = Field(None, max_length=64, description="Required on v3")
    InitiatorName: str
    SecurityCredential: str = Field(description="The initiator password, RSA-encrypted to the certificate, base64")
    CommandID: Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"]
    Amount: int = Field(ge=10, le=250_000)
    PartyA: str = Field(pattern=SHORTCODE)
    PartyB: str = Field(pattern=MSISDN)
    Remarks: str = Field(min_length=2, max_length=100)
    QueueTimeOutURL: str = Field(pattern=URL)
    ResultURL: str = Field(pattern=URL)
    Occassion: str | None = Field(None, max_length=100)


class TransactionStatusRequest(BaseModel):
    Initiator: str
    SecurityCredential: str
    CommandID: Literal["TransactionStatusQuery"]
    TransactionID: str | None = None
    OriginalConversationID: str | None = None
    PartyA: str
    IdentifierType: str
    ResultURL: str = Field(pattern=URL)
    QueueTimeOutURL: str = Field(pattern=URL)
    Remarks: str = Field(max_length=100)
    Occasion: str | None = None


class AsyncAccepted(Answer):
    ConversationID: str
    OriginatorConversationID: str
    ResponseCode: Literal["0"]
    ResponseDescription: str
