"""Inbound provider routes: store raw, then hand to a service; answer what the provider expects."""

from flask import Blueprint, request

from portal.extensions import limiter

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
