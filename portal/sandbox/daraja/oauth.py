"""The Daraja simulator's apps and OAuth: consumer key and secret in, 28-character bearer tokens out."""

import base64
import binascii
import secrets
import string
from datetime import timedelta

from sqlalchemy import bindparam, select

from portal.extensions import db
from portal.models import SandboxApp, SandboxToken
from portal.sandbox.daraja.errors import SimError
from portal.timeutil import utcnow

TOKEN_LIFETIME = 3600


def create_app_credentials(name: str) -> SandboxApp:
    app = SandboxApp(
        name=name, consumer_key=secrets.token_urlsafe(24)[:32], consumer_secret=secrets.token_urlsafe(24)[:32]
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


def check_bearer(authorization: str | None) -> SandboxApp:
    """The app the bearer token was issued to; SimError 404 for a missing, unknown or expired token."""
    token = (authorization or "")[7:].strip() if (authorization or "").startswith("Bearer ") else ""
    app = db.session.execute(_BEARER, {"token": token, "now": utcnow()}).scalars().first() if token else None
    if app is None:
        raise SimError(404, "404.001.03", "Invalid Access Token")
    return app


_BEARER = (  # every simulated API call asks: one statement, built once
    select(SandboxApp)
    .join(SandboxToken, SandboxToken.app_id == SandboxApp.id)
    .where(SandboxToken.token == bindparam("token"), SandboxToken.expires_at > bindparam("now"))
    .limit(1)
)
