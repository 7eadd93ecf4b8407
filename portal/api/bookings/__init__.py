"""The bookings dialect (the ShulePearl payments document): payments for lesson bookings under
/api/payments, held in escrow until the teacher is paid. Answers use the shared `{"success": ...}`
envelope (api/envelope.py); statuses are the document's pending, success, failed and cancelled.
Every route but the Paystack webhook needs `Authorization: Bearer <api key>`, and every query
is the key's merchant's.

The water document shares /api/payments (its routes are on the water blueprint) and
`GET /api/payments/status/{reference}`, which answers in the shape of the API that made the
payment.
"""

from flask import Blueprint

from portal import openapi
from portal.api import envelope
from portal.api.auth import require_api_key
from portal.dialects import Dialect, register
from portal.services.bookings import STATUS_NAMES

bp = Blueprint("bookings", __name__, url_prefix="/api/payments")
PUBLIC: set[str] = set()  # the Paystack webhook joins it: it is checked by its signature
openapi.section(
    bp,
    "bookings",
    "The bookings API: payments for lesson bookings held in escrow, in the {success} envelope",
    auth="api_key",
    responses={
        401: envelope.Failure,
        413: openapi.Answer(envelope.Failure, "The body is over the size limit"),
    },
)


require_api_key(bp, PUBLIC)


@bp.errorhandler(envelope.Invalid)
def _invalid(exc: envelope.Invalid):
    return exc.first_problem_response()


from portal.api.bookings import escrow, payments, phones  # noqa: E402, F401  (routes)

DIALECT = register(
    Dialect(
        name="bookings",
        render_error=envelope.render_error,
        status_names=STATUS_NAMES,
        # /api/payments is the water dialect's prefix too, with the same envelope: it renders both
        prefixes=(),
        status_data=payments.status_data,
    )
)
