"""The water dialect (shared/seeds/002): what the kiosks at water stations, and the merchant's
own systems, call under /api. Answers use the shared `{"success": ...}` envelope; statuses are
the ledger's own names. Every route shares one budget per client IP (WATER_RATE_LIMIT), and
every answer says where the client stands in X-RateLimit-Limit, -Remaining and -Reset.

A route here is `@openapi.operation(...)`, then `@bp.<method>(path)`, then its credential:
`@require_station_or_key` (the document's station routes: a station's key or an API key;
g.merchant, and g.station, None for an API key) or `@require_key` (an API key only).
"""

import time
from functools import wraps

from flask import Blueprint, current_app, g, jsonify

from portal import openapi
from portal.api import envelope
from portal.api import water_schemas as schemas
from portal.api.auth import authenticate, authenticate_station_or_key
from portal.dialects import Dialect, register
from portal.extensions import limiter
from portal.services import water_pricing

bp = Blueprint("water", __name__, url_prefix="/api")
limiter.shared_limit(lambda: current_app.config["WATER_RATE_LIMIT"], scope="water")(bp)
TOO_MANY = "Too many requests from this IP, please try again later."
openapi.section(
    bp,
    "water",
    "The water stations API: payment preview (and, with the routes to come, M-Pesa payments, OTPs and "
    "dispensing), in the {success} envelope; a station's key or an API key",
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
    return envelope.fail(400, exc.errors[0]["message"], "VALIDATION_ERROR", errors=exc.errors)


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
    try:
        sale = water_pricing.preview(water_pricing.pricing_of(g.merchant), form.amount)
    except water_pricing.AmountRefused as exc:
        return envelope.fail(400, str(exc), "INVALID_AMOUNT")
    return envelope.ok(serialise_preview(sale), "Payment preview generated")


DIALECT = register(
    Dialect(
        name="water",
        render_error=render_error,
        stk_callback_endpoint="daraja_webhooks.water_stk",
        # the document's paths; bookings shares /api/payments and the same envelope
        prefixes=("/api/payments", "/api/otp", "/api/stations", "/api/sms"),
    )
)
