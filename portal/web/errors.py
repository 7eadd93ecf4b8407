"""The portal's error pages (403, 404, 405, 500 ...): the portal's own layout, in plain words,
with a way back in. `render_portal_error` is the portal's entry in the error table (portal/errors.py)."""

import logging

from flask import Response, render_template

from portal.extensions import db

log = logging.getLogger(__name__)
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
