"""Portal pages and htmx partials, one module per area.

The portal is a dialect too: payments requested from its pages speak native status names,
get their STK results at the gateway's callback path, and its errors are pages."""
from flask import Response
from werkzeug.exceptions import default_exceptions

from portal.dialects import Dialect, register


def render_error(status: int, message: str, details=None) -> Response:
    exc = default_exceptions.get(status)
    return exc(details).get_response() if exc else Response(message, status)


DIALECT = register(Dialect(name="portal", render_error=render_error, prefixes=("",)))
