"""POST /api/payments/release-escrow: pays the teacher what is held for a booking (at most that;
the rest stays with the merchant), once, by the merchant's payout rail. The answer says the
release is under way (`status: releasing`): the payout settles after, and the escrow with it."""

from datetime import UTC, datetime

from flask import g

from portal import openapi
from portal.api import envelope
from portal.api.bookings import bp, escrow_schemas
from portal.services import escrow
from portal.services.errors import NotConfigured

# The service's refusals, as this document answers them.
REFUSALS = {
    escrow.NothingHeld: (404, "ESCROW_NOT_FOUND"),
    escrow.AlreadyReleased: (409, "ALREADY_RELEASED"),
    escrow.RefundDue: (409, "REFUND_DUE"),
    escrow.OverHeld: (400, "AMOUNT_EXCEEDS_ESCROW"),
    escrow.BadAmount: (400, "INVALID_AMOUNT"),
    NotConfigured: (503, "NOT_CONFIGURED"),
}


def _epoch_ms(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp() * 1000)


def _kes(minor: int) -> int | float:
    whole, cents = divmod(minor, 100)
    return whole if cents == 0 else minor / 100


@openapi.operation(
    "Release a booking's escrow to the teacher",
    body=escrow_schemas.ReleaseEscrow,
    responses={
        200: escrow_schemas.EscrowReleased,
        400: openapi.Answer(
            envelope.Failure, "Bad input, or more than is held, or an amount the payout rail cannot pay"
        ),
        404: openapi.Answer(envelope.Failure, "No held payment for this booking"),
        409: openapi.Answer(envelope.Failure, "Already released or being released, or the payment is due for refund"),
        503: openapi.Answer(envelope.Failure, "The merchant's payout rail (Paystack or M-Pesa B2C) is not set up"),
    },
)
@bp.post("/release-escrow")
def release_escrow():
    form = envelope.parse_body(escrow_schemas.ReleaseEscrow)
    try:
        done = escrow.release(g.merchant, form.bookingId, form.teacherPhone, form.amount, "api")
    except (escrow.EscrowError, NotConfigured) as exc:
        status, code = REFUSALS[type(exc)]
        return envelope.fail(status, str(exc), code)
    data = {
        "bookingId": done.booking_id,
        "amount": _kes(done.amount),
        "teacherPhone": done.phone,
        "releasedAt": _epoch_ms(done.requested_at),
        "status": "releasing",
    }
    return envelope.ok(data, "Escrow payment released successfully")
