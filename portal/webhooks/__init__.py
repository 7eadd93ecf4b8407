"""Inbound provider routes: store raw, then hand to a service; answer what the provider expects."""

import logging

from flask import Blueprint, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.extensions import db, limiter
from portal.services import inbox

log = logging.getLogger(__name__)
_PROVIDER_BLUEPRINTS: set[str] = set()


def provider_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of provider callbacks: none of its requests is ever refused for its rate."""
    _PROVIDER_BLUEPRINTS.add(name)
    return Blueprint(name, import_name)


@limiter.request_filter
def _from_a_provider() -> bool:
    # A filter, not `limiter.exempt`: it answers before the limiter resolves any limit, which
    # was a tenth of a callback's Python time.
    return request.blueprint in _PROVIDER_BLUEPRINTS


def receive(provider: str, kind: str) -> inbox.Verdict | None:
    """Stores the request's bytes in the inbox and reads them; None when that failed (the
    provider gets its acknowledgement all the same). A body over MAX_CONTENT_LENGTH is refused
    with 413 before it is read."""
    raw = request.get_data(cache=False)  # 413 here, unread, when the body is too large
    try:
        return inbox.receive(
            provider,
            kind,
            raw,
            path=request.path,
            query_string=request.query_string.decode("latin-1"),
            headers=dict(request.headers),
            source_ip=request.remote_addr,
        )
    except RequestEntityTooLarge:
        raise
    except Exception:  # stored already if the database was reachable; the provider must get its acknowledgement
        log.exception("%s %s request could not be stored or read", provider, kind)
        db.session.rollback()
        return None
