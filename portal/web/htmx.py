"""htmx helpers: one place for the request test, the stop-polling status and redirects."""

from flask import Response, redirect, request

STOP_POLLING = 286  # htmx stops a polling element when it gets this status


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def hx_redirect(url: str) -> Response:
    """A redirect htmx follows as a page load, or a normal 302 for a plain request."""
    if is_htmx():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
