"""Bearer API-key authentication shared by the key-authenticated dialects."""

from datetime import timedelta

from flask import g, request

from portal.extensions import db
from portal.models import ApiKey
from portal.timeutil import utcnow

TOUCH_EVERY = timedelta(minutes=1)  # last_used_at precision; avoids a write per request


def authenticate() -> bool:
    """Sets g.merchant and g.api_key from `Authorization: Bearer <key>`; False if absent or bad."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    if not key.strip().isascii() or not key.strip().isprintable():  # our keys are URL-safe ASCII
        return False
    api_key = ApiKey.find_active(key.strip())
    if api_key is None:
        return False
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > TOUCH_EVERY:
        api_key.last_used_at = now
        db.session.commit()
    g.api_key, g.merchant = api_key, api_key.merchant
    return True
