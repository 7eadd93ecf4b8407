"""The checkout dialect (shared/seeds/000): STK push at /initiate_payment, transactions, health.

Errors: {"error": ..., "details": [...field errors...]} for validation, else
{"error": ..., "details": "..."}. Statuses: PENDING, SUCCESS, FAILED.
"""

from typing import Annotated, Any

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict, ValidationError, WithJsonSchema, field_validator
from sqlalchemy import text

from portal import openapi
from portal.api import fields, idempotent
from portal.api.auth import authenticate
from portal.api.checkout_schemas import (
    CheckoutError,
    CheckoutHealth,
    CheckoutInitiated,
    CheckoutTransaction,
    CheckoutTransactionList,
    CheckoutTransactionPath,
    CheckoutTransactionsQuery,
)
from portal.api.parsing import BodyError, echo, parse_json_object
from portal.dialects import Dialect, register
from portal.extensions import db, limiter
from portal.models import Payment, PaymentStatus
from portal.services import errors, mpesa
from portal.services.phones import normalise_safaricom
from portal.timeutil import iso_z, utcnow

bp = Blueprint("checkout", __name__)
# One budget per IP shared by every route of the document, as it says.
limiter.shared_limit(lambda: current_app.config["CHECKOUT_RATE_LIMIT"], scope="checkout")(bp)

S = PaymentStatus
STATUS_NAMES = {
    S.PENDING: "PENDING",
    S.PROCESSING: "PENDING",
    S.COMPLETED: "SUCCESS",
    S.FAILED: "FAILED",
    S.CANCELLED: "FAILED",
    S.TIMEOUT: "FAILED",
    S.REVERSED: "FAILED",
}
STATUS_FILTER = {
    "PENDING": [S.PENDING, S.PROCESSING],
    "SUCCESS": [S.COMPLETED],
    "FAILED": [S.FAILED, S.CANCELLED, S.TIMEOUT, S.REVERSED],
}
MAX_AMOUNT = 70_000
openapi.section(
    bp,
    "checkout",
    "The checkout API: STK push at /initiate_payment and the merchant's transactions; "
    'failures are {"error", "details"}',
    auth="api_key",
    responses={
        401: CheckoutError,
        413: openapi.Answer(CheckoutError, "The body is over the size limit"),
        429: openapi.Answer(CheckoutError, "Over the rate limits (per IP)"),
    },
)


def error(status: int, message: str, details: Any = None):
    body = {"error": message}
    if details is not None:
        body["details"] = details
    return jsonify(body), status


def field_error(path: str, value, msg: str, location: str = "body") -> dict:
    return {"type": "field", "value": echo(value), "msg": msg, "path": path, "location": location}


def validation_failed(details: list):
    return error(400, "Validation failed", details)


@limiter.request_filter
def _is_health_check() -> bool:
    """No limit applies to a health check (a load balancer polls far more often than any client
    limit allows): any view named `health`, in any blueprint, is exempt."""
    return (request.endpoint or "").rsplit(".", 1)[-1] == "health"


@bp.errorhandler(429)
def _too_many(_exc):
    return error(429, "Too many requests from this IP, please try again later.")


@bp.before_request
def _require_key():
    if request.endpoint == "checkout.health":
        return None
    if not authenticate():
        return error(401, "Unauthorized", "Missing or invalid API token")
    return None


class InitiatePayment(BaseModel):
    # Each field takes any JSON value and its validator says what is wrong with it; the schemas
    # say what is right, for the OpenAPI document. The view reads a missing phone or amount as null.
    model_config = ConfigDict(json_schema_extra={"required": ["phone", "amount"]})

    phone: Annotated[Any, WithJsonSchema(fields.PHONE_SCHEMA)] = None
    amount: Annotated[Any, WithJsonSchema(fields.shillings_schema(1, MAX_AMOUNT))] = None
    account_reference: Annotated[Any, WithJsonSchema(fields.REFERENCE_SCHEMA)] = "Payment"
    transaction_desc: Annotated[Any, WithJsonSchema(fields.text_schema(100))] = "Payment for goods/services"

    @field_validator("phone")
    @classmethod
    def _phone(cls, v):
        return normalise_safaricom(v)

    @field_validator("amount")
    @classmethod
    def _amount(cls, v):
        return fields.whole_shillings(v, 1, MAX_AMOUNT)

    @field_validator("account_reference")
    @classmethod
    def _reference(cls, v):
        return fields.account_reference(v)

    @field_validator("transaction_desc")
    @classmethod
    def _desc(cls, v):
        return fields.text(v, name="Transaction description", default="Payment for goods/services")


def pydantic_details(exc: ValidationError, raw: dict, location: str = "body") -> list:
    details = []
    for err in exc.errors():
        path = str(err["loc"][0]) if err["loc"] else ""
        ctx_error = (err.get("ctx") or {}).get("error")
        msg = str(ctx_error) if ctx_error else err["msg"]
        details.append(field_error(path, raw.get(path), msg, location))
    return details


@openapi.operation(
    "Whether the server reaches its database (never rate-limited)",
    auth=openapi.PUBLIC,
    responses={200: CheckoutHealth, 503: CheckoutHealth},
)
@bp.get("/health")
def health():
    try:
        db.session.execute(text("SELECT 1"))
        database, status, code = "connected", "healthy", 200
    except Exception:  # any failure to reach the database is what this endpoint reports
        db.session.rollback()
        database, status, code = "disconnected", "unhealthy", 503
    return jsonify(status=status, timestamp=iso_z(utcnow()), database=database), code


@openapi.operation(
    "Ask a customer to pay by M-Pesa (STK push)",
    body=InitiatePayment,
    headers=idempotent.IdempotencyHeaders,
    responses={
        200: CheckoutInitiated,
        400: openapi.Answer(CheckoutError, "Validation failed: `details` names every bad field"),
        409: openapi.Answer(CheckoutError, "The customer already has a prompt open, or the key's request is running"),
        422: openapi.Answer(CheckoutError, "The Idempotency-Key was first used with another body"),
        502: openapi.Answer(CheckoutError, "M-Pesa refused the request"),
        503: openapi.Answer(CheckoutError, "M-Pesa is unreachable or not set up for this merchant"),
        504: openapi.Answer(CheckoutError, "M-Pesa did not answer in time: the payment settles when it reports"),
    },
)
@bp.post("/initiate_payment")
@limiter.limit(lambda: current_app.config["CHECKOUT_INITIATE_RATE_LIMIT"], override_defaults=False)
def initiate_payment():
    if not request.is_json:
        return validation_failed([field_error("", None, "Request body must be a JSON object")])
    try:
        raw = parse_json_object(request.get_data(cache=False))
    except BodyError as exc:
        return validation_failed([field_error(exc.field, exc.value, exc.message)])
    for name in ("phone", "amount"):
        raw.setdefault(name, None)
    try:
        form = InitiatePayment(**{k: raw[k] for k in InitiatePayment.model_fields if k in raw})
    except ValidationError as exc:
        return validation_failed(pydantic_details(exc, raw))

    return idempotent.answer_once(
        "checkout",
        form.model_dump(),
        lambda key: _initiate(form, key),
        refuse=error,
        bad_key=lambda key, message: validation_failed([field_error("Idempotency-Key", key, message, "headers")]),
    )


def _initiate(form: InitiatePayment, key: str | None) -> tuple[dict, int]:
    try:
        payment = mpesa.initiate_stk_push(
            g.merchant,
            phone=form.phone,
            amount=form.amount * 100,
            account_reference=form.account_reference,
            description=form.transaction_desc,
            api="checkout",
            idempotency_key=key,
        )
    except errors.SubscriberBusy:
        return {
            "error": "Duplicate transaction",
            "details": "This customer already has a payment prompt open. "
            "Wait for it to finish (about a minute) and try again.",
        }, 409
    except errors.NotConfigured as exc:
        return {"error": "M-Pesa is not configured", "details": str(exc)}, 503
    except errors.ProviderRejected as exc:
        return {"error": "M-Pesa rejected the request", "details": f"{exc.code}: {exc}"}, 502
    except errors.ProviderUnavailable as exc:
        return {"error": "M-Pesa is unavailable, please try again shortly", "details": str(exc)}, 503
    except errors.OutcomeUnknown as exc:
        return {
            "error": "M-Pesa did not answer in time",
            "details": f"The outcome is unknown; payment {exc.payment.reference} settles when M-Pesa "
            "reports it. Do not retry with a new request.",
        }, 504
    return {
        "message": "Payment initiated successfully",
        "data": {
            "checkout_request_id": payment.checkout_request_id,
            "merchant_request_id": payment.merchant_request_id,
            "customer_message": payment.customer_message,
            "status": STATUS_NAMES[payment.status],
        },
    }, 200


def serialise(p: Payment) -> dict:
    status = STATUS_NAMES[p.status]
    message = "Success. Your payment has been received." if status == "SUCCESS" else p.customer_message
    return {
        "phone": p.phone,
        "amount": p.amount_major,
        "status": status,
        "account_reference": p.account_reference,
        "transaction_desc": p.description,
        "created_at": iso_z(p.created_at),
        "updated_at": iso_z(p.updated_at),
        "checkout_request_id": p.checkout_request_id,
        "merchant_request_id": p.merchant_request_id,
        "transaction_id": p.receipt,
        "transaction_date": p.transaction_date,
        "result_code": int(p.result_code) if p.result_code and p.result_code.lstrip("-").isdigit() else p.result_code,
        "result_desc": p.result_desc,
        "customer_message": message,
    }


@openapi.operation(
    "The merchant's STK payments, newest first",
    query=CheckoutTransactionsQuery,
    responses={
        200: CheckoutTransactionList,
        400: openapi.Answer(CheckoutError, "A bad query parameter: `details` names it"),
    },
)
@bp.get("/transactions")
def transactions():
    raw = request.args.to_dict()
    try:
        form = CheckoutTransactionsQuery.model_validate(raw)
    except ValidationError as exc:
        return validation_failed(pydantic_details(exc, raw, "query"))
    query = Payment.for_merchant(g.merchant.id).filter(Payment.kind == "stk_push")
    if form.phone:
        query = query.filter(Payment.phone == form.phone)
    if form.status:
        query = query.filter(Payment.status.in_(STATUS_FILTER[form.status]))
    total = query.count()
    rows = query.order_by(Payment.created_at.desc(), Payment.id.desc()).offset(form.skip).limit(form.limit).all()
    return jsonify(transactions=[serialise(p) for p in rows], count=len(rows), total=total)


@openapi.operation(
    "One of the merchant's STK payments by its CheckoutRequestID",
    path=CheckoutTransactionPath,
    responses={
        200: CheckoutTransaction,
        400: openapi.Answer(CheckoutError, "A malformed id"),
        404: openapi.Answer(CheckoutError, "No payment of this merchant has this id"),
    },
)
@bp.get("/transactions/<checkout_request_id>")
def transaction(checkout_request_id: str):
    raw = {"checkout_request_id": checkout_request_id}
    try:
        CheckoutTransactionPath.model_validate(raw)
    except ValidationError as exc:
        return validation_failed(pydantic_details(exc, raw, "params"))
    payment = Payment.get_for_merchant(g.merchant.id, checkout_request_id=checkout_request_id)
    if payment is None:
        return error(404, "Transaction not found", f"No transaction with checkout_request_id {checkout_request_id}")
    return jsonify(serialise(payment))


def render_error(status: int, message: str, details=None):
    response, _ = error(status, message, details)
    response.status_code = status
    return response


DIALECT = register(
    Dialect(
        name="checkout",
        render_error=render_error,
        status_names=STATUS_NAMES,
        stk_callback_endpoint="daraja_webhooks.checkout_stk",
        prefixes=("/initiate_payment", "/transactions", "/health", "/callback"),
    )
)
