"""Water stations: the kiosks a merchant runs, each with its own key (shown once, stored as a
prefix and a SHA-256, like an API key). A code (STATION001) is unique per merchant; a rotated
key stops working at once; a disabled station's key is refused until it is enabled again.

Raises StationInputError (a sentence for whoever typed the value) and StationChanged (the key
was rotated by someone else meanwhile: the one just made was not stored)."""

import re
import secrets

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Otp, Payment, Station
from portal.models.merchant import hash_api_key
from portal.models.water import DEFAULT_PULSES_PER_LITER, STATION_KEY_PREFIX
from portal.timeutil import utcnow

CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
MAX_NAME, MAX_LOCATION = 120, 200
MAX_PULSES = 100_000  # flow meters give tens to a few thousand pulses a liter
SHOWN_PREFIX = 12  # characters of a key kept in clear, so a merchant can tell keys apart


class StationInputError(ValueError):
    """A value that cannot be used; the message is meant for the person who typed it, `field`
    names the value (code, name, location, pulses_per_liter)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


class StationChanged(RuntimeError):
    """The station's key changed while it was being rotated; nothing was stored."""


def generate_key() -> str:
    return STATION_KEY_PREFIX + secrets.token_urlsafe(32)


def _key_columns(key: str) -> dict:
    return {"key_prefix": key[:SHOWN_PREFIX], "key_hash": hash_api_key(key)}


def clean_code(raw) -> str:
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if not CODE.fullmatch(code):
        raise StationInputError(
            "The station code is 1 to 32 letters, digits, dashes or underscores, starting with a letter "
            "or digit (for example STATION001).",
            "code",
        )
    return code


def _text(raw, what: str, longest: int, *, required: bool) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    if required and not value:
        raise StationInputError(f"Give the station a {what}.", what)
    if len(value) > longest:
        raise StationInputError(f"Keep the station's {what} to {longest} characters or fewer.", what)
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        raise StationInputError(f"The station's {what} must be on one line, without control characters.", what)
    return value


def clean_pulses(raw) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PULSES:
        raise StationInputError(f"Pulses per liter is a whole number from 1 to {MAX_PULSES:,}.", "pulses_per_liter")
    return raw


def _details(name, location, pulses_per_liter) -> dict:
    return {
        "name": _text(name, "name", MAX_NAME, required=True),
        "location": _text(location, "location", MAX_LOCATION, required=False),
        "pulses_per_liter": clean_pulses(pulses_per_liter),
    }


def stations_of(merchant_id: int) -> list[Station]:
    return Station.for_merchant(merchant_id).order_by(Station.code).all()


def station_by_code(merchant_id: int, code: str) -> Station | None:
    return Station.get_for_merchant(merchant_id, code=code.strip().upper())


def create_station(
    merchant_id: int,
    code,
    name,
    location="",
    pulses_per_liter=DEFAULT_PULSES_PER_LITER,
    *,
    key: str | None = None,
) -> tuple[Station, str]:
    """Adds an active station and commits; returns it and its key in clear (shown once)."""
    code = clean_code(code)
    fields = _details(name, location, pulses_per_liter)
    if station_by_code(merchant_id, code) is not None:
        raise StationInputError(f"You already have a station with code {code}.", "code")
    key = key or generate_key()
    station = Station(merchant_id=merchant_id, code=code, active=True, **fields, **_key_columns(key))
    db.session.add(station)
    try:
        db.session.commit()
    except IntegrityError:  # the same code, added by someone else a moment ago
        db.session.rollback()
        raise StationInputError(f"You already have a station with code {code}.", "code") from None
    return station, key


def update_station(station: Station, *, name, location, pulses_per_liter) -> None:
    """Renames the station, moves it, or sets its meter's pulses per liter; commits. Its code and
    key stay. Every value is checked before any is changed."""
    fields = _details(name, location, pulses_per_liter)
    for column, value in fields.items():
        setattr(station, column, value)
    db.session.commit()


def rotate_key(station: Station, key: str | None = None) -> str:
    """Gives the station a new key and commits; the old key is refused from the next request on.
    One conditional UPDATE on the key it had: raises StationChanged if another rotation won."""
    key = key or generate_key()
    moved = db.session.execute(
        update(Station)
        .where(Station.id == station.id, Station.key_hash == station.key_hash)
        .values(**_key_columns(key), key_rotated_at=utcnow())
    ).rowcount
    if moved != 1:
        db.session.rollback()
        raise StationChanged(f"The key of station {station.code} was just changed by someone else.")
    db.session.commit()
    return key


def set_active(station: Station, active: bool) -> None:
    """Enables or disables the station and commits: a disabled station's key is refused."""
    station.active = active
    db.session.commit()


def ensure_station(merchant_id: int, code: str, name: str, key: str) -> Station:
    """The station with this code, created if missing, holding `key` and active: for the demo
    seed, whose printed keys must work however often it runs (it undoes a rotation or a disable)."""
    station = station_by_code(merchant_id, code)
    if station is None:
        return create_station(merchant_id, code, name, key=key)[0]
    if station.key_hash != hash_api_key(key) or not station.active:
        for column, value in _key_columns(key).items():
            setattr(station, column, value)
        station.active = True
        db.session.commit()
    return station


def recent_dispenses(station: Station, limit: int = 20) -> list[tuple[Otp, str]]:
    """The codes most recently taken by this station, newest first, each with its payment's reference."""
    return (
        db.session.query(Otp, Payment.reference)
        .join(Payment, Payment.id == Otp.payment_id)
        .filter(Otp.merchant_id == station.merchant_id, Otp.station_id == station.id)
        .order_by(db.func.coalesce(Otp.verified_at, Otp.updated_at).desc(), Otp.id.desc())
        .limit(limit)
        .all()
    )
