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

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import ValidationError

from portal import openapi
from portal.api import envelope
from portal.api import water_schemas as schemas
from portal.api.auth import authenticate, authenticate_station_or_key
from portal.api.water_schemas import WaterReferencePath
from portal.dialects import Dialect, register
from portal.extensions import db, limiter
from portal.models import OtpStatus, Payment, Station
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services import errors, mpesa, otps, water, water_pricing
from portal.services.mpesa.stk import QUERYABLE
from portal.timeutil import iso_z

bp = Blueprint("water", __name__, url_prefix="/api")
limiter.shared_limit(lambda: current_app.config["WATER_RATE_LIMIT"], scope="water")(bp)
TOO_MANY = "Too many requests from this IP, please try again later."
openapi.section(
    bp,
    "water",
    "The water stations API: payment preview, M-Pesa payments, OTPs and dispensing, in the {success} "
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
    try:
        sale = water_pricing.preview(water_pricing.pricing_of(g.merchant), form.amount)
    except water_pricing.AmountRefused as exc:
        return envelope.fail(400, str(exc), "INVALID_AMOUNT")
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


@openapi.operation(
    "A water payment's status, from the ledger",
    path=WaterReferencePath,
    responses={200: schemas.WaterTransactionAnswer, 404: openapi.Answer(envelope.Failure, "Transaction not found")},
)
@bp.get("/payments/status/<reference>")
@require_station_or_key
def payment_status(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    return envelope.ok(water.serialise(payment, payment.status))


@openapi.operation(
    "Ask M-Pesa about a water payment now (STK query) and update it by the answer",
    path=WaterReferencePath,
    responses={
        200: schemas.WaterTransactionAnswer,
        400: openapi.Answer(envelope.Failure, "No checkout request ID: the push never reached M-Pesa"),
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
    if not payment.checkout_request_id:
        return envelope.fail(400, "No checkout request ID: the push never reached M-Pesa", "NO_CHECKOUT_REQUEST_ID")
    if payment.status in QUERYABLE:
        try:
            mpesa.ask_now(payment)
        except errors.NotConfigured as exc:
            return envelope.fail(503, str(exc), "NOT_CONFIGURED")
        except DarajaError as exc:
            status = 503 if exc.retryable else 502
            return envelope.fail(status, f"M-Pesa refused the query: {exc.error_code}: {exc.error_message}")
        except DarajaUnavailable as exc:
            return envelope.fail(503, f"M-Pesa is unavailable, please try again shortly: {exc}")
    return envelope.ok(water.serialise(payment, payment.status), "Payment status verified from M-Pesa")


# -- OTPs ----------------------------------------------------------------------------------------


def _otp_state(otp) -> dict:
    seen = otps.view(otp)
    return {
        "exists": True,
        "status": seen.status,
        "expiresAt": iso_z(seen.expires_at),
        "attempts": seen.attempts,
        "maxAttempts": seen.max_attempts,
        "liters": seen.liters,
        "remainingAttempts": seen.remaining_attempts,
    }


@openapi.operation(
    "Issue a new OTP for a completed payment (the code is returned this once; an unused earlier code stops working)",
    body=schemas.OtpGenerate,
    responses={
        201: schemas.OtpIssuedAnswer,
        400: openapi.Answer(envelope.Failure, "Transaction not completed, or liters beyond those paid for"),
        404: openapi.Answer(envelope.Failure, "Transaction not found"),
        409: openapi.Answer(envelope.Failure, "The OTP has already been used"),
    },
    auth="api_key",
)
@bp.post("/otp/generate")
@require_key
def otp_generate():
    form = envelope.parse_body(schemas.OtpGenerate)
    payment = _payment(form.transactionReference)
    if payment is None:
        return _not_found()
    otp, code = otps.issue(payment, form.liters)
    db.session.commit()
    data = {
        "otp": code,
        "transactionReference": payment.reference,
        "liters": otp.liters,
        "expiresAt": iso_z(otp.expires_at),
        "expiresInMinutes": current_app.config["OTP_EXPIRY_MINUTES"],
    }
    return envelope.ok(data, "OTP generated successfully", status=201)


@openapi.operation(
    "A payment's OTP: its status, attempts and expiry (never the code)",
    path=WaterReferencePath,
    responses={200: schemas.OtpStateAnswer, 404: openapi.Answer(envelope.Failure, "Transaction not found")},
    auth="api_key",
)
@bp.get("/otp/status/<reference>")
@require_key
def otp_status(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    otp = otps.otp_of(payment)
    return envelope.ok({"exists": False} if otp is None else _otp_state(otp))


# -- stations ------------------------------------------------------------------------------------
class _StationRefused(Exception):
    def __init__(self, status: int, message: str, error: str):
        super().__init__(message)
        self.status, self.message, self.error = status, message, error


def _station(code: str | None, *, required: bool = True) -> Station | None:
    """The station that asks: a station key's own (it may name only itself), or, with an API
    key, the merchant's active station named by `stationId`."""
    if g.station is not None:
        if code is not None and code != g.station.code:
            raise _StationRefused(403, f"This key belongs to station {g.station.code}", "STATION_MISMATCH")
        return g.station
    if code is None:
        if not required:
            return None
        raise _StationRefused(400, "stationId is required", "VALIDATION_ERROR")
    station = Station.get_for_merchant(g.merchant.id, code=code)
    if station is None or not station.active:
        raise _StationRefused(404, "Station not found", "STATION_NOT_FOUND")
    return station


@bp.errorhandler(_StationRefused)
@bp.errorhandler(otps.OtpRefused)
def _refused(exc: _StationRefused | otps.OtpRefused):
    """A station or an OTP that cannot be used as asked: the status and code the document gives it."""
    return envelope.fail(exc.status, exc.message, exc.error)


def _payment_with_otp(reference: str) -> Payment:
    payment = _payment(reference)
    if payment is None:
        raise otps.OtpRefused(404, "OTP_NOT_FOUND", "OTP not found")
    return payment


def _dispense(payment: Payment, otp, station: Station) -> dict:
    return {
        "transactionReference": payment.reference,
        "stationId": station.code,
        "liters": otp.liters,
        "pulses": otps.pulses(otp, station),
        "status": otp.status,
        "verifiedAt": iso_z(otp.verified_at),
        "usedAt": iso_z(otp.used_at),
    }


@openapi.operation(
    "Verify a customer's OTP at a station: it is locked to the station, which may dispense the pulses",
    body=schemas.StationOtpVerify,
    responses={
        200: schemas.DispenseAnswer,
        400: openapi.Answer(envelope.Failure, "Invalid OTP, expired, or blocked"),
        403: openapi.Answer(envelope.Failure, "OTP locked to a different station"),
        404: openapi.Answer(envelope.Failure, "OTP (or station) not found"),
        409: openapi.Answer(envelope.Failure, "OTP in use at a different station"),
    },
)
@bp.post("/stations/otp/verify")
@require_station_or_key
def station_verify():
    form = envelope.parse_body(schemas.StationOtpVerify)
    station = _station(form.stationId)
    payment = _payment_with_otp(form.transactionReference)
    otp = otps.verify(payment, station, form.otp)
    return envelope.ok(_dispense(payment, otp, station), "OTP verified successfully. Dispensing authorized.")


@openapi.operation(
    "Dispensing finished at the station that verified the OTP: the OTP is used",
    body=schemas.StationOtpComplete,
    responses={
        200: schemas.DispenseAnswer,
        400: openapi.Answer(envelope.Failure, "The OTP is expired, blocked or was used"),
        403: openapi.Answer(envelope.Failure, "OTP locked to a different station"),
        404: openapi.Answer(envelope.Failure, "OTP (or station) not found"),
        409: openapi.Answer(envelope.Failure, "The OTP was not verified at this station, or is in use elsewhere"),
    },
)
@bp.post("/stations/otp/complete")
@require_station_or_key
def station_complete():
    form = envelope.parse_body(schemas.StationOtpComplete)
    station = _station(form.stationId)
    payment = _payment_with_otp(form.transactionReference)
    otp = otps.complete(payment, station)
    return envelope.ok(_dispense(payment, otp, station), "Dispensing complete. OTP used.")


@openapi.operation(
    "The station a key speaks for, with its merchant's pricing: how a kiosk checks the key it is given",
    query=schemas.StationWhoamiQuery,
    responses={
        200: schemas.StationIdentityAnswer,
        400: openapi.Answer(envelope.Failure, "stationId is required with an API key, or malformed"),
        403: openapi.Answer(envelope.Failure, "The key belongs to another station than stationId"),
        404: openapi.Answer(envelope.Failure, "No active station of the merchant has this code"),
    },
)
@bp.get("/stations/whoami")
@require_station_or_key
def station_whoami():
    query = envelope.validate(schemas.StationWhoamiQuery, request.args.to_dict())
    station = _station(query.stationId)
    pricing = water_pricing.pricing_of(g.merchant)
    data = {
        "stationId": station.code,
        "name": station.name,
        "location": station.location,
        "pulsesPerLiter": station.pulses_per_liter,
        "merchantName": g.merchant.name,
        "pricing": {
            "pricePerLiter": pricing.price_per_liter,
            "currency": pricing.currency,
            "roundingStrategy": pricing.rounding,
            "minAmount": pricing.min_amount,
            "maxAmount": pricing.max_amount,
        },
    }
    return envelope.ok(data, f"This key speaks for station {station.code}")


@openapi.operation(
    "Whether a station can use a payment's OTP now (a station key asks for itself)",
    path=WaterReferencePath,
    query=schemas.StationOtpStatusQuery,
    responses={
        200: schemas.StationOtpStateAnswer,
        400: envelope.Failure,
        403: openapi.Answer(envelope.Failure, "stationId names another station than the key's"),
        404: openapi.Answer(envelope.Failure, "Transaction (or station) not found"),
    },
)
@bp.get("/stations/otp/status/<reference>")
@require_station_or_key
def station_otp_status(reference: str):
    query = envelope.validate(schemas.StationOtpStatusQuery, request.args.to_dict())
    station = _station(query.stationId, required=False)
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    otp = otps.otp_of(payment)
    if otp is None:
        return envelope.ok({"exists": False})
    locked_elsewhere = otp.station_id is not None and (station is None or otp.station_id != station.id)
    data = _otp_state(otp)
    data |= {
        "pulses": otps.pulses(otp, station) if station else None,
        "stationId": otp.station.code if otp.station_id else None,
        "isLockedToDifferentStation": locked_elsewhere if station else False,
        "canUse": otps.can_use(otp, station) if station else data["status"] == OtpStatus.ACTIVE,
    }
    return envelope.ok(data)
