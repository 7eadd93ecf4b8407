"""The water document's objects: a merchant's stations (the kiosks that dispense) and the
one-time codes that let a paid customer dispense once, at one station.

A station authenticates with its own key (shown once; stored as a prefix and a SHA-256, like
an API key: the keys are long random strings). An OTP stores only an HMAC of its six digits
under a server-side key: a bare SHA-256 of six digits is reversed in a second."""

from functools import cache

from portal.extensions import db
from portal.models.merchant import Merchant, MerchantScoped, hash_api_key
from portal.timeutil import utcnow

DEFAULT_PULSES_PER_LITER = 1000
STATION_KEY_PREFIX = "wsk_"  # API keys start "mpk_": a key names its kind before any lookup


class Station(MerchantScoped, db.Model):
    """A dispensing kiosk. `code` (STATION001) is what requests name it by, unique per merchant."""

    __tablename__ = "stations"
    __table_args__ = (db.UniqueConstraint("merchant_id", "code", name="uq_stations_merchant_code"),)
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    code = db.Column(db.String(32), nullable=False)
    name = db.Column(db.String(120), nullable=False)
    location = db.Column(db.String(200), nullable=False, default="", server_default="")
    pulses_per_liter = db.Column(
        db.Integer, nullable=False, default=DEFAULT_PULSES_PER_LITER, server_default=str(DEFAULT_PULSES_PER_LITER)
    )
    key_prefix = db.Column(db.String(16), nullable=False)
    key_hash = db.Column(db.String(64), nullable=False, unique=True)
    active = db.Column(db.Boolean, nullable=False, default=True, server_default=db.true())
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    key_rotated_at = db.Column(db.DateTime)
    merchant = db.relationship(Merchant)

    @classmethod
    def find_active(cls, key: str) -> "Station | None":
        """The active station holding this key, with its merchant, in one statement."""
        return db.session.execute(_active_station_query(), {"key_hash": hash_api_key(key)}).scalars().first()


@cache
def _active_station_query():
    """Built once, on first use (the mappers are configured by then)."""
    return (
        db.select(Station)
        .options(db.joinedload(Station.merchant))
        .where(Station.key_hash == db.bindparam("key_hash"), Station.active.is_(True))
        .limit(1)
    )


class OtpStatus:
    ACTIVE = "active"  # issued, not yet used
    IN_PROGRESS = "in_progress"  # verified at a station, which is dispensing
    USED = "used"  # dispensing finished
    EXPIRED = "expired"  # its time ran out (or it was expired by hand)
    BLOCKED = "blocked"  # too many wrong codes

    ALL = (ACTIVE, IN_PROGRESS, USED, EXPIRED, BLOCKED)
    FINAL = (USED, EXPIRED, BLOCKED)


class Otp(MerchantScoped, db.Model):
    """The code that unlocks one dispense of a completed payment's liters: one per payment
    (issuing again replaces the code while it is still unused)."""

    __tablename__ = "otps"
    __table_args__ = (db.Index("ix_otps_status_expires", "status", "expires_at"),)
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id"), nullable=False, unique=True)
    code_hmac = db.Column(db.String(64), nullable=False)  # HMAC-SHA256 of the six digits, hex
    liters = db.Column(db.Integer, nullable=False)
    status = db.Column(db.String(16), nullable=False, default=OtpStatus.ACTIVE)
    attempts = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    max_attempts = db.Column(db.Integer, nullable=False, default=3, server_default="3")
    expires_at = db.Column(db.DateTime, nullable=False)
    station_id = db.Column(db.Integer, db.ForeignKey("stations.id"), index=True)  # the station it is locked to
    issued = db.Column(db.Integer, nullable=False, default=1, server_default="1")  # how many codes were made
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    verified_at = db.Column(db.DateTime)
    used_at = db.Column(db.DateTime)
    station = db.relationship(Station)
