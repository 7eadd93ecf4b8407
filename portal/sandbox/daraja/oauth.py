"""The Daraja simulator's apps and OAuth: consumer key and secret in, 28-character bearer tokens out.
Each app also has an API operator (initiator) for B2C and Transaction Status."""

import base64
import binascii
import secrets
import string
from datetime import timedelta

from sqlalchemy import Row, bindparam, select

from portal.extensions import db
from portal.models import SandboxApp, SandboxToken
from portal.sandbox.daraja.errors import SimError
from portal.timeutil import utcnow

TOKEN_LIFETIME = 3600
INITIATOR = "testapi"  # the sandbox's API operator name (reference §9.7); its password is the app's own


def create_app_credentials(name: str) -> SandboxApp:
    app = SandboxApp(
        name=name,
        consumer_key=secrets.token_urlsafe(24)[:32],
        consumer_secret=secrets.token_urlsafe(24)[:32],
        initiator_name=INITIATOR,
        initiator_password=secrets.token_urlsafe(12),
    )
    db.session.add(app)
    return app


def issue_token(authorization: str | None) -> SandboxToken:
    if not authorization or not authorization.startswith("Basic "):
        raise SimError(400, "400.008.01", "Invalid Authentication passed")
    try:
        key, _, secret = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # not base64, not ASCII, not UTF-8
        raise SimError(400, "400.008.01", "Invalid Authentication passed") from None
    app = SandboxApp.query.filter_by(consumer_key=key).first()
    if app is None or not secrets.compare_digest(app.consumer_secret.encode(), secret.encode()):
        raise SimError(400, "400.008.01", "Invalid Authentication passed")
    token = SandboxToken(
        app_id=app.id,
        # a bearer credential: from `secrets`, never `random` (whose state anything in the process may
        # seed; two equal tokens broke the unique index and answered 500)
        token="".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28)),
        expires_at=utcnow() + timedelta(seconds=TOKEN_LIFETIME),
    )
    db.session.add(token)
    db.session.commit()
    return token


def check_bearer(authorization: str | None, family: str = "stk") -> Row:
    """The app the bearer token was issued to, as a row of its id and name: read, never changed,
    so no ORM object is built for it (B2C and Transaction Status read the app's initiator
    themselves: initiators.credential_is_valid). A missing, unknown or expired token is refused
    the way that API family refuses it (reference §1.2, §9.1): `stk` 404.001.03; `c2b` (C2B and
    Transaction Status) 404.001.04 without a bearer header, 400.003.01 for a bad token; `b2c`
    401.002.01 naming the token."""
    bearer = (authorization or "").startswith("Bearer ")
    token = (authorization or "")[7:].strip() if bearer else ""
    app = db.session.connection().execute(_BEARER, {"token": token, "now": utcnow()}).first() if token else None
    if app is not None:
        return app
    if family == "b2c":
        raise SimError(401, "401.002.01", f"Error Occurred - Invalid Access Token - {token[:64]}")
    if family == "c2b":
        if not bearer:
            raise SimError(404, "404.001.04", "Invalid Authentication Header")
        raise SimError(400, "400.003.01", "Invalid Access Token")
    raise SimError(404, "404.001.03", "Invalid Access Token")


_APPS, _TOKENS = SandboxApp.__table__, SandboxToken.__table__
_BEARER = (  # every simulated API call asks: one statement, built once
    select(_APPS.c.id, _APPS.c.name)
    .join(_TOKENS, _TOKENS.c.app_id == _APPS.c.id)
    .where(_TOKENS.c.token == bindparam("token"), _TOKENS.c.expires_at > bindparam("now"))
    .limit(1)
)
