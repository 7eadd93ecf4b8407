"""Security headers on every answer: a Content-Security-Policy with no inline script or style,
no framing, no MIME sniffing, a referrer policy, and HSTS in production."""

from flask import Flask, Response

# htmx is vendored and told by base.html's htmx-config not to inject its inline indicator style
# nor to eval, so 'self' suffices everywhere; SVG charts are inline markup, not images.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers that predate it
        if app.config.get("ENV") == "production":
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
