"""The isp dialect (shared/seeds/003): public payment initiation and status under /api/v1, for
storefronts selling internet packages. Authorised by an active `client_id` in the body; the
amount comes from the package. Errors: {"error": "..."}. Statuses: pending, completed, failed,
cancelled. Rate limited per client; CORS for browsers.
"""

import time
from typing import TypeVar

from flask import Blueprint, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address
from pydantic import BaseModel, ValidationError

from portal import openapi
from portal.api import isp_schemas as schemas
from portal.api.parsing import BodyError, parse_json_object
from portal.dialects import Dialect, register
from portal.extensions import limiter
from portal.models import IspClient, Payment, PaymentStatus
from portal.services import errors, isp
from portal.services.mpesa.polling import refresh

bp = Blueprint("isp", __name__, url_prefix="/api/v1")
M = TypeVar("M", bound=BaseModel)
openapi.section(
    bp,
    "internet packages",
    "Public payment API for internet packages: authorised by an active client_id in the body",
    responses={
        413: openapi.Answer(schemas.IspError, "The body is over the size limit"),
        429: openapi.Answer(schemas.IspError, "Over the client's 100 requests a minute"),
    },
)

S = PaymentStatus
STATUS_NAMES = {
    S.PENDING: "pending",
    S.PROCESSING: "pending",
    S.COMPLETED: "completed",
    S.FAILED: "failed",
    S.CANCELLED: "cancelled",
    S.TIMEOUT: "failed",  # Daraja's 1037 and the like: "other codes - failed"
    S.REVERSED: "failed",  # the money went back: nothing was bought
}
# Browsers on any storefront may call the two routes (and read their errors); no cookies are involved.
CORS_RESOURCES = {
    r"/api/v1/.*": {
        "origins": "*",
        "send_wildcard": True,
        "methods": ["POST", "OPTIONS"],
        "allow_headers": ["Content-Type"],
        "max_age": 600,
    }
}


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str):
    return jsonify(error=message), status


def _body() -> dict:
    """The body as a JSON object, parsed once per request (the rate limit's key reads it first)."""
    if "isp_body" not in g:
        try:
            g.isp_body = parse_json_object(request.get_data(cache=False))
        except BodyError as exc:
            g.isp_body = exc
    if isinstance(g.isp_body, BodyError):
        raise Refused(400, f"Invalid request body: {g.isp_body.message}")
    return g.isp_body


def _client_key() -> str:
    """One budget per client_id, so a storefront cannot spend another's; a body naming no
    well-formed client_id is counted against its IP address instead."""
    try:
        client_id = schemas.uuid_or_none(_body().get("client_id"))
    except Refused:
        client_id = None
    return f"client:{client_id}" if client_id else f"ip:{get_remote_address()}"


limiter.shared_limit(
    lambda: current_app.config["ISP_RATE_LIMIT"],
    scope="isp",
    key_func=_client_key,
    exempt_when=lambda: request.method == "OPTIONS",  # a CORS preflight is the browser's, not a request
)(bp)


@bp.errorhandler(429)
def _too_many(_exc):
    response = jsonify(error="Too many requests for this client, please try again later.")
    current = limiter.current_limit
    if current is not None:
        response.headers["Retry-After"] = str(max(1, int(current.reset_at - time.time())))
    return response, 429


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return error(exc.status, exc.message)


def _form(model: type[M]) -> M:
    """The body validated by its documented model; the first problem in the document's words."""
    try:
        return model.model_validate(_body())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Refused(400, str((first.get("ctx") or {}).get("error") or first["msg"])) from None


def _active_client(client_id: str) -> IspClient:
    client = isp.active_client(client_id)
    if client is None:
        raise Refused(403, "Invalid or inactive client")
    return client


@openapi.operation(
    "Initiate an M-Pesa payment for an internet package",
    body=schemas.InitiateRequest,
    responses={
        200: schemas.Initiated,
        400: schemas.IspError,
        403: schemas.IspError,
        404: schemas.IspError,
        409: schemas.IspError,
        500: openapi.Answer(schemas.IspError, "failed to initiate STK push: ..."),
    },
)
@bp.post("/payments/initiate")
def initiate():
    form = _form(schemas.InitiateRequest)
    client = _active_client(form.client_id)
    package = isp.package_of(client, form.package_id)
    if package is None:
        raise Refused(404, "Package not found")
    if not package.active:
        raise Refused(400, "Package is inactive")
    try:
        payment = isp.initiate(client, package, phone=form.phone_number, description=form.description)
    except errors.SubscriberBusy:
        # Not a failure of ours: the customer is answering another prompt. Conflict, retry later.
        return error(
            409, "failed to initiate STK push: the customer already has a payment prompt open; try again in a minute"
        )
    except errors.ProviderRejected as exc:
        return error(500, f"failed to initiate STK push: {exc.code}: {exc}")
    except errors.OutcomeUnknown:
        return error(
            500,
            "failed to initiate STK push: M-Pesa did not answer in time; the prompt may still reach "
            "the customer, so do not retry at once",
        )
    except errors.PaymentError as exc:  # not configured, or M-Pesa unreachable
        return error(500, f"failed to initiate STK push: {exc}")
    return jsonify(
        transaction_id=payment.uid,
        checkout_id=payment.checkout_request_id,
        message="Payment initiated successfully",
        status=STATUS_NAMES[payment.status],
    )


@openapi.operation(
    "A payment's status, asked of M-Pesa (at most once every few seconds per payment)",
    body=schemas.StatusRequest,
    responses={200: schemas.PaymentStatus, 400: schemas.IspError, 403: schemas.IspError, 404: schemas.IspError},
)
@bp.post("/payments/status")
def status():
    form = _form(schemas.StatusRequest)
    client = _active_client(form.client_id)
    payment = isp.payment_of(client, form.checkout_id)
    if payment is None:
        raise Refused(404, "Payment not found")
    payment = refresh(payment, current_app.config["STATUS_QUERY_EVERY"])
    return jsonify(serialise(payment))


def serialise(payment: Payment) -> dict:
    return {
        "transaction_id": payment.uid,
        "checkout_id": payment.checkout_request_id,
        "status": STATUS_NAMES[payment.status],
        "amount": payment.amount_major,
        "reference": payment.reference,
        "phone_number": "+" + payment.phone if payment.phone else None,
    }


def render_error(status: int, message: str, details=None):
    response = jsonify(error=message)
    response.status_code = status
    return response


DIALECT = register(Dialect(name=isp.API, render_error=render_error, status_names=STATUS_NAMES, prefixes=("/api/v1",)))
