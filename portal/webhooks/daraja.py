"""Daraja's callbacks: STK results on three documented paths, C2B validation and confirmation;
one inbox for all, each answered in the words its sender or its API expects.
Whatever arrives is stored and acknowledged (a body over MAX_CONTENT_LENGTH is refused with
413 before it is read)."""

from typing import Any, Literal

from flask import jsonify
from pydantic import BaseModel, ConfigDict, Field

from portal import openapi
from portal.dialects import dialect_of
from portal.services import inbox
from portal.services.mpesa import c2b
from portal.webhooks import provider_blueprint, receive

bp = provider_blueprint("daraja_webhooks", __name__)
openapi.section(
    bp,
    "provider callbacks",
    "Where Daraja posts results: any bytes are stored first, then read, and always acknowledged",
    responses={413: openapi.Answer(None, "The body is over the size limit (refused unread)")},
)


# -- Daraja's shapes, for the OpenAPI document (services/mpesa/stk_inbox.py reads the bytes) -----
class CallbackItem(BaseModel):
    Name: str
    Value: Any = None


class ResultMetadata(BaseModel):
    Item: list[CallbackItem]


class StkCallback(BaseModel):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResultCode: int
    ResultDesc: str
    CallbackMetadata: ResultMetadata | None = None


class StkCallbackBody(BaseModel):
    stkCallback: StkCallback


class StkCallbackRequest(BaseModel):
    Body: StkCallbackBody


class DarajaCallbackQuery(BaseModel):
    """The callback URL we hand Daraja carries the payment's reference and a token."""

    ref: str | None = Field(None, description="The payment's reference")
    token: str | None = Field(None, description="Proves the callback came through the URL we handed out")


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckoutAck(Ack):
    message: str
    status: Literal["PENDING", "SUCCESS", "FAILED", "RECEIVED"]


class DarajaAck(Ack):
    ResultCode: Literal[0]
    ResultDesc: str


class WaterAck(Ack):
    success: Literal[True]
    message: str


RECEIVED = openapi.Raw(StkCallbackRequest)


def _receive(kind: str) -> inbox.Verdict | None:
    return receive("daraja", kind)


@openapi.operation(
    "Daraja's STK result for a checkout payment", body=RECEIVED, query=DarajaCallbackQuery, responses={200: CheckoutAck}
)
@bp.post("/callback")
def checkout_stk():
    verdict = _receive("stk")
    status = verdict.status if verdict is not None else None
    name = dialect_of("checkout").status_name(status) if status else "RECEIVED"
    return jsonify(message="Callback processed successfully", status=name)


@openapi.operation(
    "Daraja's STK result for a gateway or portal payment",
    body=RECEIVED,
    query=DarajaCallbackQuery,
    responses={200: DarajaAck},
)
@bp.post("/api/mpesa/callback/stk")
def gateway_stk():
    _receive("stk")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@openapi.operation(
    "Daraja's STK result for a water station payment",
    body=RECEIVED,
    query=DarajaCallbackQuery,
    responses={200: WaterAck},
)
@bp.post("/api/payments/mpesa/callback")
def water_stk():
    _receive("stk")
    return jsonify(success=True, message="Callback processed successfully")


class C2bRequest(BaseModel):
    """What Daraja posts to the validation and confirmation URLs: every value a string."""

    TransactionType: str
    TransID: str
    TransTime: str
    TransAmount: str
    BusinessShortCode: str
    BillRefNumber: str | None = None
    InvoiceNumber: str | None = None
    OrgAccountBalance: str | None = None
    ThirdPartyTransID: str | None = None
    MSISDN: str
    FirstName: str | None = None
    MiddleName: str | None = None
    LastName: str | None = None


class C2bValidationAnswer(Ack):
    ResultCode: Literal["0", "C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016"]
    ResultDesc: Literal["Accepted", "Rejected"]


class MerchantCallbackQuery(BaseModel):
    """The URLs we register with Daraja name the merchant and carry a token."""

    ref: str | None = Field(None, description="The merchant (M<id>)")
    token: str | None = Field(None, description="Proves the request came through the URL we registered")


# C2B. The documented paths, and the aliases we register with Daraja: it refuses to register a
# URL containing "mpesa" (services/mpesa/c2b.py).
@openapi.operation(
    "Daraja asks whether to accept a C2B payment (answered by the merchant's rules)",
    body=openapi.Raw(C2bRequest),
    query=MerchantCallbackQuery,
    responses={200: C2bValidationAnswer},
)
@bp.post("/api/mpesa/callback/c2b/validation")
@bp.post("/hooks/daraja/c2b/validation", endpoint="c2b_validation_alias")
def c2b_validation():
    verdict = _receive("c2b_validation")
    # Unreadable, or we failed: refuse rather than take money we cannot attribute.
    return jsonify(verdict.reply if verdict is not None and verdict.reply else c2b.reject(c2b.OTHER_ERROR))


@openapi.operation(
    "Daraja confirms a C2B payment (recorded once per TransID)",
    body=openapi.Raw(C2bRequest),
    query=MerchantCallbackQuery,
    responses={200: DarajaAck},
)
@bp.post("/api/mpesa/callback/c2b/confirmation")
@bp.post("/hooks/daraja/c2b/confirmation", endpoint="c2b_confirmation_alias")
def c2b_confirmation():
    _receive("c2b_confirmation")
    return jsonify(ResultCode=0, ResultDesc="Success")


class ResultEntry(BaseModel):
    Key: str
    Value: Any = None


class ResultList(BaseModel):
    ResultParameter: list[ResultEntry] | ResultEntry


class DarajaResult(BaseModel):
    ResultType: int | str | None = None
    ResultCode: int | str
    ResultDesc: str | None = None
    OriginatorConversationID: str | None = None
    ConversationID: str | None = None
    TransactionID: str | None = None
    ResultParameters: ResultList | None = None


class DarajaResultRequest(BaseModel):
    """Daraja's asynchronous result envelope (B2C, Transaction Status)."""

    Result: DarajaResult


class PayoutCallbackQuery(BaseModel):
    """The result URLs we hand Daraja name the payout, the attempt, and carry a token."""

    ref: str | None = Field(None, description="The payout's reference")
    token: str | None = Field(None, description="Proves the result came through the URL we handed out")
    attempt: int | None = Field(None, description="Which attempt of the payout this is about")


RESULT = openapi.Raw(DarajaResultRequest)


# B2C and Transaction Status results. We hand Daraja the /hooks/daraja/... aliases (see C2B).
@openapi.operation(
    "Daraja's result of a B2C payout", body=RESULT, query=PayoutCallbackQuery, responses={200: DarajaAck}
)
@bp.post("/api/mpesa/callback/b2c/result")
@bp.post("/hooks/daraja/b2c/result", endpoint="b2c_result_alias")
def b2c_result():
    _receive("b2c_result")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@openapi.operation(
    "Daraja's queue timeout of a B2C payout (not a failure: we ask)",
    body=RESULT,
    query=PayoutCallbackQuery,
    responses={200: DarajaAck},
)
@bp.post("/api/mpesa/callback/b2c/timeout")
@bp.post("/hooks/daraja/b2c/timeout", endpoint="b2c_timeout_alias")
def b2c_timeout():
    _receive("b2c_timeout")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@openapi.operation(
    "Transaction Status's answer about a payout's attempt",
    body=RESULT,
    query=PayoutCallbackQuery,
    responses={200: DarajaAck},
)
@bp.post("/hooks/daraja/status/result")
def status_result():
    _receive("status_result")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@openapi.operation(
    "Transaction Status timed out in Daraja's queue (we ask again)",
    body=RESULT,
    query=PayoutCallbackQuery,
    responses={200: DarajaAck},
)
@bp.post("/hooks/daraja/status/timeout")
def status_timeout():
    _receive("b2c_timeout")  # the same as a payout's timeout: ask again
    return jsonify(ResultCode=0, ResultDesc="Accepted")
