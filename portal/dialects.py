"""The dialect registry: each documented API (and the portal) declares its name, where
Daraja sends the STK results of the payments it creates, its status names and its error
renderer. Services, webhooks and pages read it; none of them imports a dialect.

It lives beside the layers rather than in api/: services and webhooks read it, and
neither may import the API layer.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from portal.models import PaymentStatus

NATIVE = {s: s for s in PaymentStatus.ALL}
GATEWAY_STK = "daraja_webhooks.gateway_stk"


@dataclass(frozen=True)
class Dialect:
    name: str
    # render_error(status, message, details=None) -> a response in the document's error format
    render_error: Callable
    # internal status -> the word the document uses
    status_names: Mapping[str, str] = field(default_factory=lambda: NATIVE)
    # the webhook endpoint Daraja is handed for STK results of this API's payments
    stk_callback_endpoint: str = GATEWAY_STK
    # URL prefixes whose errors (404, 405, 413, 500 ...) this dialect renders
    prefixes: tuple[str, ...] = ()
    # status_data(payment) -> the `data` of the shared GET /api/payments/status/{ref} for this
    # dialect's payments, or None where that route does not show them (404)
    status_data: Callable | None = None

    def status_name(self, status: str) -> str:
        return self.status_names[status]


_DIALECTS: dict[str, Dialect] = {}


def register(dialect: Dialect) -> Dialect:
    from portal import errors

    _DIALECTS[dialect.name] = dialect
    for prefix in dialect.prefixes:
        errors.register(prefix, dialect.render_error)
    return dialect


def dialect_of(name: str) -> Dialect:
    """The dialect that created a payment (`payment.api`)."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise LookupError(f"no dialect named {name!r} is registered") from None


def registered() -> list[str]:
    return sorted(_DIALECTS)
