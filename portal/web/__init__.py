"""Portal pages and htmx partials, one module per area; `init_app` adds what every page shares:
the money and refusal filters, security headers and error pages."""
from flask import Flask


def init_app(app: Flask) -> None:
    """Call after the blueprints and the sandbox, whose error handlers the portal's pages wrap."""
    from portal.web import errors, formatting, refusals, security

    app.add_template_filter(formatting.money)
    app.add_template_filter(refusals.refusal)
    security.init_app(app)
    errors.init_app(app)
