"""The portal's error pages (403, 404, 405, 500): the portal's own layout, in plain words,
with a way back in. `render_portal_error` is the portal's entry for an error-renderer table."""

import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, default_exceptions

from portal.extensions import db

log = logging.getLogger(__name__)
# Paths whose documents answer errors in their own formats; the portal leaves them alone.
NOT_PORTAL = ("/api", "/sandbox/daraja", "/callback", "/initiate_payment", "/transactions", "/health")
PORTAL_CODES = (403, 404, 405, 500)
WORDS = {
    403: ("Not allowed", "Your account cannot open this page."),
    404: (
        "Page not found",
        "There is nothing at this address. It may have been mistyped, or it belongs to another account.",
    ),
    405: ("That did not work", "This page cannot be used that way. Go back and use the page's own buttons."),
    500: (
        "Something went wrong",
        "The portal hit a problem and could not finish. Nothing you did caused it; please try again in a minute.",
    ),
}
PLAIN_500 = (
    "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
    '<p>Please try again in a minute. <a href="/">Back to the portal</a></p>'
)


def render_portal_error(code: int, message: str | None = None) -> Response:
    """The portal's error page for `code`: title and words for the code, `message` instead of
    the default words when given. Needs a request context; never raises."""
    title, words = WORDS.get(code, WORDS[500] if code >= 500 else WORDS[404])
    if code >= 500:
        db.session.rollback()  # the page reads the signed-in user; a failed transaction must not stop it
    try:
        body = render_template("errors/error.html", code=code, title=title, message=message or words)
    except Exception:  # a page about a failure must not fail too (database down, broken template)
        log.exception("could not render the %s page", code)
        body = PLAIN_500
    return Response(body, status=code, mimetype="text/html")


def is_portal_path(path: str) -> bool:
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in NOT_PORTAL)


def init_app(app: Flask) -> None:
    """Portal paths get the portal's pages; other paths keep the handler they had before (or
    the framework's answer) until the error table by URL prefix takes over."""
    for code in PORTAL_CODES:
        previous = app.error_handler_spec[None][code].get(default_exceptions[code])
        app.register_error_handler(code, _handler(code, previous))


def _handler(code: int, previous):
    def handle(exc: HTTPException):
        if is_portal_path(request.path):
            return render_portal_error(code)
        return previous(exc) if previous else exc

    return handle
