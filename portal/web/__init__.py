"""Portal pages and htmx partials, one module per area; `init_app` adds what every page shares:
the money and refusal filters and the security headers.

The portal is a dialect too: payments requested from its pages speak native status names,
get their STK results at the gateway's callback path, and its errors are its own pages
(the fallback of the error table, for every path no document claims)."""

from flask import Flask

from portal.dialects import Dialect, register
from portal.web.errors import render_portal_error


def render_error(status: int, message: str, details=None):
    return render_portal_error(status)


DIALECT = register(Dialect(name="portal", render_error=render_error, prefixes=("",)))


def init_app(app: Flask) -> None:
    from portal.web import formatting, refusals, security

    app.add_template_filter(formatting.money)
    app.add_template_filter(refusals.refusal)
    security.init_app(app)
