"""The Daraja simulator's HTTP face: Daraja's paths, shapes and error envelopes."""

from flask import Blueprint, Response, jsonify, request

from portal import openapi
from portal.sandbox import faults
from portal.sandbox.daraja import oauth as apps
from portal.sandbox.daraja import stk
from portal.sandbox.daraja.errors import SimError, request_id_like_daraja
from portal.sandbox.daraja.schemas import (
    DarajaError,
    OAuthQuery,
    StkPushAccepted,
    StkPushRequest,
    StkQueryAnswer,
    StkQueryRequest,
    Token,
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


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SimError(400, "400.002.05", "Invalid Request Payload")
    return body


@openapi.operation(
    "Daraja's OAuth: a bearer token for the consumer key and secret",
    auth="daraja_basic",
    query=OAuthQuery,
    responses={200: Token},
)
@bp.get("/oauth/v1/generate")
def oauth():
    if request.args.get("grant_type") != "client_credentials":
        raise SimError(400, "400.008.02", "Invalid grant type passed")
    token = apps.issue_token(request.headers.get("Authorization"))
    return jsonify(access_token=token.token, expires_in=str(apps.TOKEN_LIFETIME - 1))


@openapi.operation("Daraja's M-Pesa Express: STK push", body=StkPushRequest, responses={200: StkPushAccepted})
@bp.post("/mpesa/stkpush/v1/processrequest")
def stk_push():
    app = apps.check_bearer(request.headers.get("Authorization"))
    req = stk.push(_json_body(), app)
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
    req = stk.query(_json_body())
    return jsonify(
        ResponseCode="0",
        ResponseDescription="The service request has been accepted successsfully",
        MerchantRequestID=req.merchant_request_id,
        CheckoutRequestID=req.checkout_request_id,
        ResultCode=str(req.result_code),
        ResultDesc=req.result_desc,
    )
