"""The Daraja simulator's HTTP face: Daraja's paths, shapes and error envelopes (OAuth, M-Pesa
Express, C2B v1/v2, B2C v1/v3, Transaction Status)."""

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from portal import openapi
from portal.sandbox import faults
from portal.sandbox.daraja import b2c, c2b, status, stk
from portal.sandbox.daraja import oauth as apps
from portal.sandbox.daraja.errors import SimError, request_id_like_daraja
from portal.sandbox.daraja.schemas import (
    AsyncAccepted,
    B2cRequest,
    C2bAccepted,
    C2bRegisterRequest,
    C2bSimulateRequest,
    DarajaError,
    OAuthQuery,
    StkPushAccepted,
    StkPushRequest,
    StkQueryAnswer,
    StkQueryRequest,
    Token,
    TransactionStatusRequest,
    parse,
)

bp = Blueprint("sandbox_daraja", __name__, url_prefix="/sandbox/daraja")
openapi.section(
    bp,
    "sandbox",
    "Provider simulators (sandbox mode only): Daraja's paths, shapes and error codes",
    auth="daraja_token",
    responses={
        400: openapi.Answer(DarajaError, "Invalid request (Daraja's 400.002.02 and kin)"),
        404: openapi.Answer(DarajaError, "Invalid access token"),
        413: openapi.Answer(DarajaError, "The body is over the size limit"),
        # Daraja answers 500 for refusals of its own (unknown merchant, wrong credentials, busy
        # subscriber, still processing), and the fault switches make it fail on purpose.
        500: openapi.Answer(DarajaError, "Daraja's refusals in its own 500 envelope, and the fault switches"),
    },
)

# Daraja's code for an error the simulator did not raise itself (routing, size, crash), by HTTP status.
ERROR_CODES = {400: "400.002.05", 404: "404.001.01", 405: "405.001", 413: "413.001", 500: "500.003.1001"}


def render_error(status: int, message: str, details=None) -> Response:
    """Daraja's error envelope for any HTTP status: the renderer of every error under /sandbox/daraja."""
    if status == 405:
        message = f"{request.method} Method Not Allowed"
    response = jsonify(
        requestId=request_id_like_daraja(), errorCode=ERROR_CODES.get(status, f"{status}.001"), errorMessage=message
    )
    response.status_code = status
    return response


@bp.errorhandler(SimError)
def _sim_error(exc: SimError):
    return jsonify(requestId=exc.request_id, errorCode=exc.code, errorMessage=exc.message), exc.status


faults.install_api_faults(bp, render_error)


def _asked() -> BaseModel:
    """The request's JSON object, validated by the model its operation declares: the document's
    description of a simulator route is, by construction, what the simulator enforces."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SimError(400, "400.002.05", "Invalid Request Payload")
    return parse(openapi.operation_of(current_app, request.url_rule).body, body)


@openapi.operation(
    "Daraja's OAuth: a bearer token for the consumer key and secret",
    auth="daraja_basic",
    query=OAuthQuery,
    responses={200: Token},
)
@bp.get("/oauth/v1/generate")
def oauth():
    try:
        openapi.operation_of(current_app, request.url_rule).query.model_validate(request.args.to_dict())
    except ValidationError:
        raise SimError(400, "400.008.02", "Invalid grant type passed") from None
    token = apps.issue_token(request.headers.get("Authorization"))
    return jsonify(access_token=token.token, expires_in=str(apps.TOKEN_LIFETIME - 1))


@openapi.operation("Daraja's M-Pesa Express: STK push", body=StkPushRequest, responses={200: StkPushAccepted})
@bp.post("/mpesa/stkpush/v1/processrequest")
def stk_push():
    app = apps.check_bearer(request.headers.get("Authorization"))
    req = stk.push(_asked(), app)
    message = "Success. Request accepted for processing"
    return jsonify(
        MerchantRequestID=req.merchant_request_id,
        CheckoutRequestID=req.checkout_request_id,
        ResponseCode="0",
        ResponseDescription=message,
        CustomerMessage=message,
    )


@openapi.operation("Daraja's STK push query", body=StkQueryRequest, responses={200: StkQueryAnswer})
@bp.post("/mpesa/stkpushquery/v1/query")
def stk_query():
    apps.check_bearer(request.headers.get("Authorization"))
    req = stk.query(_asked())
    return jsonify(
        ResponseCode="0",
        ResponseDescription="The service request has been accepted successsfully",
        MerchantRequestID=req.merchant_request_id,
        CheckoutRequestID=req.checkout_request_id,
        ResultCode=str(req.result_code),
        ResultDesc=req.result_desc,
    )


def _version() -> str:
    """The API version in the rule's path (/mpesa/c2b/v2/registerurl: v2)."""
    return request.url_rule.rule.rsplit("/", 2)[-2]


# -- C2B ---------------------------------------------------------------------------------------
@openapi.operation(
    "Daraja's C2B URL registration", body=C2bRegisterRequest, responses={200: C2bAccepted, 401: DarajaError}
)
@bp.post("/mpesa/c2b/v1/registerurl")
@bp.post("/mpesa/c2b/v2/registerurl")
def c2b_register():
    version = _version()
    app = apps.check_bearer(request.headers.get("Authorization"), family="c2b")
    c2b.register(_asked(), app, version)
    # Daraja's key really is misspelled, in both C2B answers (reference §6.1).
    return jsonify(OriginatorCoversationID=request_id_like_daraja(), ResponseCode="0", ResponseDescription="Success")


@openapi.operation(
    "Daraja's C2B simulation (sandbox only)", body=C2bSimulateRequest, responses={200: C2bAccepted, 401: DarajaError}
)
@bp.post("/mpesa/c2b/v1/simulate")
@bp.post("/mpesa/c2b/v2/simulate")
def c2b_simulate():
    app = apps.check_bearer(request.headers.get("Authorization"), family="c2b")
    payment = c2b.simulate(_asked(), app)
    return jsonify(
        OriginatorCoversationID=payment.originator_conversation_id,
        ResponseCode="0",
        ResponseDescription=b2c.ACCEPTED,
    )


# -- B2C and Transaction Status ----------------------------------------------------------------
@openapi.operation("Daraja's B2C payment request", body=B2cRequest, responses={200: AsyncAccepted, 401: DarajaError})
@bp.post("/mpesa/b2c/v1/paymentrequest")
@bp.post("/mpesa/b2c/v3/paymentrequest")
def b2c_payment():
    version = _version()
    app = apps.check_bearer(request.headers.get("Authorization"), family="b2c")
    payout = b2c.pay(_asked(), app, version)
    return jsonify(
        ConversationID=payout.conversation_id,
        OriginatorConversationID=payout.originator_conversation_id,
        ResponseCode="0",
        ResponseDescription=b2c.ACCEPTED,
    )


@openapi.operation(
    "Daraja's Transaction Status query", body=TransactionStatusRequest, responses={200: AsyncAccepted, 401: DarajaError}
)
@bp.post("/mpesa/transactionstatus/v1/query")
def transaction_status():
    app = apps.check_bearer(request.headers.get("Authorization"), family="c2b")
    asked = status.query(_asked(), app)
    return jsonify(
        OriginatorConversationID=asked.originator_conversation_id,
        ConversationID=asked.conversation_id,
        ResponseCode="0",
        ResponseDescription=b2c.ACCEPTED,
    )
