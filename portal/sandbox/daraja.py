"""The Daraja simulator's HTTP face: Daraja's paths, shapes and error envelopes."""
from flask import Blueprint, jsonify, request

from portal.sandbox import stk
from portal.sandbox.stk import SimError

bp = Blueprint("sandbox_daraja", __name__, url_prefix="/sandbox/daraja")


@bp.errorhandler(SimError)
def _sim_error(exc: SimError):
    return jsonify(requestId=exc.request_id, errorCode=exc.code, errorMessage=exc.message), exc.status


def render_error(status: int, message: str, details=None):
    """Daraja's envelope for the simulator's HTTP errors (wrong method, unknown path, too large)."""
    code = f"{status}.001"
    if status == 405:
        message = f"{request.method} Method Not Allowed"
    response = jsonify(requestId=stk._request_id(), errorCode=code, errorMessage=message)
    response.status_code = status
    return response


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SimError(400, "400.002.05", "Invalid Request Payload")
    return body


@bp.get("/oauth/v1/generate")
def oauth():
    if request.args.get("grant_type") != "client_credentials":
        raise SimError(400, "400.008.02", "Invalid grant type passed")
    token = stk.issue_token(request.headers.get("Authorization"))
    return jsonify(access_token=token.token, expires_in=str(stk.TOKEN_LIFETIME - 1))


@bp.post("/mpesa/stkpush/v1/processrequest")
def stk_push():
    app = stk.check_bearer(request.headers.get("Authorization"))
    req = stk.push(_json_body(), app)
    message = "Success. Request accepted for processing"
    return jsonify(MerchantRequestID=req.merchant_request_id, CheckoutRequestID=req.checkout_request_id,
                   ResponseCode="0", ResponseDescription=message, CustomerMessage=message)


@bp.post("/mpesa/stkpushquery/v1/query")
def stk_query():
    stk.check_bearer(request.headers.get("Authorization"))
    req = stk.query(_json_body())
    return jsonify(ResponseCode="0", ResponseDescription="The service request has been accepted successsfully",
                   MerchantRequestID=req.merchant_request_id, CheckoutRequestID=req.checkout_request_id,
                   ResultCode=str(req.result_code), ResultDesc=req.result_desc)
