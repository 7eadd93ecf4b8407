"""The gateway dialect (the "Daraja backend" document): STK push and query, C2B, B2C,
transactions, queues and dead letters, live events, health, under /api.

Answers use the shared `{"success": ...}` envelope (api/envelope.py); statuses are the
ledger's own names. Every route but health needs `Authorization: Bearer <api key>`, and
every query is the key's merchant's.
"""

from flask import Blueprint, current_app

from portal import openapi
from portal.api import envelope
from portal.api.auth import require_api_key
from portal.dialects import GATEWAY_STK, Dialect, register
from portal.extensions import limiter

bp = Blueprint("gateway", __name__, url_prefix="/api")
# One budget per client address for every authenticated route of the document.
limiter.shared_limit(lambda: current_app.config["GATEWAY_RATE_LIMIT"], scope="gateway")(bp)
PUBLIC = {"gateway.health"}
openapi.section(
    bp,
    "gateway",
    "The gateway API: M-Pesa STK push and query, transactions, health, in the {success} envelope",
    auth="api_key",
    responses={
        401: envelope.Failure,
        413: openapi.Answer(envelope.Failure, "The body is over the size limit"),
        429: openapi.Answer(envelope.Failure, "Over the gateway's rate budget"),
    },
)


require_api_key(bp, PUBLIC)


@bp.errorhandler(envelope.Invalid)
def _invalid(exc: envelope.Invalid):
    return exc.response()


DIALECT = register(
    Dialect(
        name="gateway",
        render_error=envelope.render_error,
        stk_callback_endpoint=GATEWAY_STK,
        # the shared envelope under /api; documents with another format register longer prefixes
        prefixes=("/api",),
    )
)

from portal.api.gateway import events, health, mpesa, queues, transactions  # noqa: E402, F401  (routes)
