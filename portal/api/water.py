"""The water dialect: what the kiosks at water stations, and the merchant's
own systems, call under /api. Answers use the shared `{"success": ...}` envelope; statuses are
the ledger's own names. Every route shares one budget per client IP (WATER_RATE_LIMIT), and
every answer says where the client stands in X-RateLimit-Limit, -Remaining and -Reset.

A route here is `@openapi.operation(...)`, then `@bp.<method>(path)`, then its credential:
`@require_station_or_key` (the document's station routes: a station's key or an API key;
g.merchant, and g.station, None for an API key) or `@require_key` (an API key only).
"""

import time
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, url_for
from pydantic import RootModel, ValidationError

from portal import openapi
from portal.api import envelope
from portal.api import water_schemas as schemas
from portal.api.auth import authenticate, authenticate_station_or_key
from portal.api.bookings import schemas as bookings_schemas
from portal.api.water_schemas import WaterReferencePath
from portal.dialects import Dialect, dialect_of, register
from portal.extensions import limiter
from portal.models import Payment
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services import errors, mpesa, water, water_pricing
from portal.services.mpesa.stk import QUERYABLE

bp = Blueprint("water", __name__, url_prefix="/api")
limiter.shared_limit(lambda: current_app.config["WATER_RATE_LIMIT"], scope="water")(bp)
TOO_MANY = "Too many requests from this IP, please try again later."
openapi.section(
    bp,
    "water",
    "The water stations API: payment preview, M-Pesa and Paystack payments, OTPs and dispensing, in the {success} "
    "envelope; a station's key or an API key",
    auth=openapi.STATION,
    responses={
        401: envelope.Failure,
        413: openapi.Answer(envelope.Failure, "The body is over the size limit"),
        429: openapi.Answer(schemas.WaterTooMany, "Over the water API's requests per IP (100 per 15 minutes)"),
    },
)


def _guarded(check, message: str):
    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not check():
                return envelope.fail(401, message)
            return view(*args, **kwargs)

        return guarded

    return decorator


require_station_or_key = _guarded(
    authenticate_station_or_key, "Missing or invalid station key or API key (Authorization: Bearer <key>)"
)
require_key = _guarded(authenticate, "Missing or invalid API key (Authorization: Bearer <key>)")


def render_error(status: int, message: str, details=None):
    if status == 429:
        response = jsonify(success=False, message=TOO_MANY)
        response.status_code = 429
        return response
    return envelope.render_error(status, message, details)


@bp.errorhandler(429)
def _too_many(_exc):
    return render_error(429, "Too Many Requests")


@bp.errorhandler(envelope.Invalid)
def _invalid(exc: envelope.Invalid):
    """The first problem is the message (the document's "Invalid amount or out of range"); all are in `errors`."""
    return exc.first_problem_response()


@bp.errorhandler(water_pricing.AmountRefused)
def _amount_refused(exc: water_pricing.AmountRefused):
    return envelope.fail(400, str(exc), "INVALID_AMOUNT")


def priced(amount: int) -> water_pricing.Preview:
    """What `amount` buys at the caller's merchant's prices; an amount that buys no whole liters
    within the merchant's range answers 400 INVALID_AMOUNT (AmountRefused, handled above)."""
    return water_pricing.preview(water_pricing.pricing_of(g.merchant), amount)


@bp.after_request
def _rate_limit_headers(response):
    current = limiter.current_limit  # None while the limiter is off
    if current is not None:
        response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(current.remaining)
        response.headers["X-RateLimit-Reset"] = str(current.reset_at)  # Unix seconds
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(1, int(current.reset_at - time.time())))
    return response


def serialise_preview(sale: water_pricing.Preview) -> dict:
    return {
        "requestedAmount": sale.requested_amount,
        "amount": sale.amount,
        "liters": sale.liters,
        "pricePerLiter": sale.price_per_liter,
        "currency": sale.currency,
        "roundingStrategy": sale.rounding,
        "difference": sale.difference,
    }


@openapi.operation(
    "What an amount buys: whole liters at the merchant's price, and the amount charged for them",
    body=schemas.WaterPreview,
    responses={200: schemas.WaterPreviewed, 400: openapi.Answer(envelope.Failure, "Invalid amount or out of range")},
)
@bp.post("/payments/preview")
@require_station_or_key
def preview():
    form = envelope.parse_body(schemas.WaterPreview)
    return envelope.ok(serialise_preview(priced(form.amount)), "Payment preview generated")


DIALECT = register(
    Dialect(
        name="water",
        render_error=render_error,
        stk_callback_endpoint="daraja_webhooks.water_stk",
        # the document's paths; bookings shares /api/payments and the same envelope
        prefixes=("/api/payments", "/api/otp", "/api/stations", "/api/sms"),
        status_data=lambda payment: water.serialise(payment, payment.status),
    )
)


# -- M-Pesa payments ---------------------------------------------------------------------------
def _payment(reference: str) -> Payment | None:
    """The caller's merchant's water payment with this reference (a malformed one finds nothing)."""
    try:
        WaterReferencePath.model_validate({"reference": reference})
    except ValidationError:
        return None
    return water.payment_of(g.merchant, reference)


def _not_found():
    return envelope.fail(404, "Transaction not found", "TRANSACTION_NOT_FOUND")


@openapi.operation(
    "Start an M-Pesa payment for whole liters: the customer gets the STK prompt on their phone",
    body=schemas.WaterInitiate,
    responses={
        201: schemas.WaterInitiateAnswer,
        400: openapi.Answer(envelope.Failure, "Invalid phone number or amount"),
        409: openapi.Answer(envelope.Failure, "The customer already has a prompt open"),
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the push"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
        504: openapi.Answer(envelope.Failure, "M-Pesa did not answer in time; the payment settles when it reports"),
    },
)
@bp.post("/payments/mpesa/initiate")
@require_station_or_key
def mpesa_initiate():
    form = envelope.parse_body(schemas.WaterInitiate)
    sale = priced(form.amount)
    try:
        payment = water.initiate(
            g.merchant,
            g.station,
            phone=form.phoneNumber,
            amount=sale.amount,
            liters=sale.liters,
            metadata=form.metadata,
        )
    except errors.PaymentError as exc:
        status, code, message = envelope.payment_refused(exc)
        return envelope.fail(status, message, code)
    data = {
        "success": True,
        "transactionReference": payment.reference,
        "checkoutRequestId": payment.checkout_request_id,
        "amount": sale.amount,
        "liters": sale.liters,
        "phoneNumber": payment.phone,
        "status": payment.status,  # the water document uses the ledger's own names
        "message": "Please enter your M-Pesa PIN",
    }
    return envelope.ok(data, "M-Pesa payment initiated. Please enter your PIN.", status=201)


class PaymentStatusAnswer(RootModel[schemas.WaterTransactionAnswer | bookings_schemas.StatusAnswer]):
    """A water payment in the water document's shape, a bookings payment in the bookings document's."""


@openapi.operation(
    "A payment's status, from the ledger, in the shape of the API that made it: a water payment's "
    "(a station's key or an API key) or a bookings payment's (an API key)",
    path=WaterReferencePath,
    responses={200: PaymentStatusAnswer, 404: openapi.Answer(envelope.Failure, "Transaction not found")},
)
@bp.get("/payments/status/<reference>")
@require_station_or_key
def payment_status(reference: str):
    """The path two documents share: dispatched on the API that created the payment."""
    try:
        WaterReferencePath.model_validate({"reference": reference})
    except ValidationError:
        return _not_found()
    payment = Payment.get_for_merchant(g.merchant.id, reference=reference)
    if payment is None or (g.station is not None and payment.api != water.API):
        return _not_found()
    try:
        show = dialect_of(payment.api).status_data
    except LookupError:
        show = None
    data = show(payment) if show is not None else None
    if data is None:
        return _not_found()
    return envelope.ok(data)


@openapi.operation(
    "Ask M-Pesa about a water payment now (STK query) and update it by the answer",
    path=WaterReferencePath,
    responses={
        200: schemas.WaterTransactionAnswer,
        400: openapi.Answer(
            envelope.Failure, "No checkout request ID: the push never reached M-Pesa, or it is a Paystack payment"
        ),
        404: openapi.Answer(envelope.Failure, "Transaction not found"),
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the query"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
    },
)
@bp.get("/payments/mpesa/query/<reference>")
@require_station_or_key
def mpesa_query(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    if water.is_paystack(payment):
        return envelope.fail(
            400,
            f"{payment.reference} is a Paystack payment: ask GET "
            + url_for("water.paystack_verify", reference=payment.reference),
            "NOT_AN_MPESA_PAYMENT",
        )
    if not payment.checkout_request_id:
        return envelope.fail(400, "No checkout request ID: the push never reached M-Pesa", "NO_CHECKOUT_REQUEST_ID")
    if payment.status in QUERYABLE:
        try:
            mpesa.ask_now(payment)
        except (errors.NotConfigured, DarajaError, DarajaUnavailable) as exc:
            return envelope.provider_failure(exc, "query")
    return envelope.ok(water.serialise(payment, payment.status), "Payment status verified from M-Pesa")


# The OTP and station routes, and the Paystack ones, are this blueprint's too, in modules of their own.
from portal.api import water_codes, water_paystack  # noqa: E402, F401
