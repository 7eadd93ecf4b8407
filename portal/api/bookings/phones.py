"""POST /api/payments/validate-phone: a number in any of the document's four forms, answered in
the form M-Pesa takes (254XXXXXXXXX), or refused with what is wrong with it."""

from portal import openapi
from portal.api import envelope
from portal.api.bookings import bp, schemas
from portal.services.phones import InvalidPhone, normalise_safaricom


@openapi.operation(
    "Check a phone number and give it in the form M-Pesa takes (254XXXXXXXXX)",
    body=schemas.ValidatePhone,
    responses={
        200: schemas.PhoneValidated,
        400: openapi.Answer(envelope.Failure, "Not a Kenyan Safaricom number in one of the four forms"),
    },
)
@bp.post("/validate-phone")
def validate_phone():
    form = envelope.parse_body(schemas.ValidatePhone)
    try:
        formatted = normalise_safaricom(form.phone, short_form=True)
    except InvalidPhone as exc:
        return envelope.fail(400, str(exc), "INVALID_PHONE")
    data = {
        "originalPhone": str(form.phone),
        "formattedPhone": formatted,
        "country": "Kenya",
        "provider": "Safaricom MPesa",
    }
    return envelope.ok(data, "Phone number is valid")
