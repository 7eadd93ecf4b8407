"""The water API's code routes, on the water blueprint: the OTP a completed payment earns
(`/api/otp/...`, the merchant's own systems, an API key) and what a station does with it
(`/api/stations/...`: verify, complete, status; a station's key or an API key naming the
station). Refusals are raised and answered by one error handler, in the document's words."""

from flask import current_app, g, request

from portal import openapi
from portal.api import envelope
from portal.api import water_schemas as schemas
from portal.api.water import _not_found, _payment, bp, require_key, require_station_or_key
from portal.api.water_schemas import WaterReferencePath
from portal.extensions import db
from portal.models import OtpStatus, Payment, Station
from portal.services import otps, water_pricing
from portal.timeutil import iso_z

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
