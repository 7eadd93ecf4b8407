"""Errors by URL prefix: one table maps a prefix to the renderer of the error format its
document uses (checkout, bookings/water, isp, gateway, a simulator, the portal). The
longest matching prefix wins; the portal's pages are the fallback ("")."""

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

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
