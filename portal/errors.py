"""Errors by URL prefix: one table maps a prefix to the renderer of the error format its
document uses (checkout, bookings/water, isp, gateway, a simulator, the portal). The
longest matching prefix wins; the portal's pages are the fallback ("")."""

import logging

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

log = logging.getLogger(__name__)
_RENDERERS: dict[str, object] = {}


def register(prefix: str, renderer) -> None:
    """`renderer(status, message, details=None)` answers an error under `prefix`: `message` is the
    status's name ("Not Found"), `details` a sentence about it."""
    _RENDERERS[prefix] = renderer


def renderer_for(path: str):
    for prefix in sorted(_RENDERERS, key=len, reverse=True):
        if _matches(path, prefix):
            return _RENDERERS[prefix]
    return None


def _matches(path: str, prefix: str) -> bool:
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/")


def json_error(status: int, message: str, details=None):
    """`{"error": message}`: for JSON routes whose document names no error format."""
    response = jsonify(error=message)
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def refuse_oversize_streams_first(app: Flask) -> None:
    """Installs the check below as the app's first before-request hook: ahead of CSRF, sign-in
    and the blueprints' own lookups, which would otherwise answer before it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversize_streams)


def _refuse_oversize_streams() -> None:
    """A body sent in chunks has no Content-Length to refuse it by: werkzeug reads it up to
    MAX_CONTENT_LENGTH and silently drops the rest, so a route would store or parse a cut body.
    Read it here (kept for the route) and refuse with 413 if it fills the limit and more follows;
    a chunked body of exactly the limit is refused too, as telling it apart would mean reading on."""
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()


def _http_error(exc: HTTPException):
    renderer = renderer_for(request.path)
    if renderer is None or exc.code is None or exc.code < 400:
        return exc
    response = renderer(exc.code, exc.name, exc.description)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _http_error(InternalServerError())
