"""Bearer authentication shared by the key-authenticated dialects: a merchant's API key, or for
the routes the water document gives station authentication, a station's key too. A station's
key opens those routes only: every other route asks `authenticate()`, which refuses it."""

from datetime import timedelta

from flask import g, request

from portal.extensions import db
from portal.models import ApiKey, Station
from portal.models.water import STATION_KEY_PREFIX
from portal.timeutil import utcnow

TOUCH_EVERY = timedelta(minutes=1)  # last_used_at precision; avoids a write per request


def bearer_key() -> str | None:
    """The key of `Authorization: Bearer <key>`, or None when absent or not a key of ours."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    if not key.isascii() or not key.isprintable():  # our keys are URL-safe ASCII
        return None
    return key


def authenticate() -> bool:
    """Sets g.merchant and g.api_key from an API key; False if absent or bad. A station's key
    is not an API key: refused before any lookup."""
    key = bearer_key()
    if key is None or key.startswith(STATION_KEY_PREFIX):
        return False
    return _use_api_key(key)


def authenticate_station_or_key() -> bool:
    """Sets g.merchant, g.station and g.api_key from a station's key (g.api_key None) or an API
    key (g.station None); False if absent, bad, rotated away or the station is disabled. One
    statement either way: the prefix says which table holds the key."""
    key = bearer_key()
    if key is None:
        return False
    if not key.startswith(STATION_KEY_PREFIX):
        g.station = None
        return _use_api_key(key)
    station = Station.find_active(key)
    if station is None:
        return False
    g.station, g.api_key, g.merchant = station, None, station.merchant
    return True


def _use_api_key(key: str) -> bool:
    api_key = ApiKey.find_active(key)
    if api_key is None:
        return False
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > TOUCH_EVERY:
        api_key.last_used_at = now
        db.session.commit()
    g.api_key, g.merchant = api_key, api_key.merchant
    return True


def require_api_key(bp, public: set[str]) -> None:
    """Every route of `bp` but the endpoints in `public` needs an API key; without one the
    answer is the `{"success": ...}` envelope's 401."""
    from portal.api import envelope

    @bp.before_request
    def _require_key():
        if request.endpoint in public or authenticate():
            return None
        return envelope.fail(401, "Missing or invalid API key (Authorization: Bearer <key>)")
