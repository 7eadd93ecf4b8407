"""Unbound extension singletons; create_app() binds them. Nothing here connects. And the app's
JSON provider, which every `request.get_json()` goes through."""

from contextlib import contextmanager

from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints, so migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)
csrf = CSRFProtect()


@contextmanager
def loaded_after_commit():
    """Commits inside the block leave the session's objects loaded instead of expired: for a
    hot path that knows what it wrote (services.transitions keeps a Payment it moves up to
    date) and should not read its own row back afterwards."""
    session = db.session()
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = True


class StrictJSONProvider(DefaultJSONProvider):
    """Reads only what JSON allows: `NaN` and `Infinity` are refused, and a body nested past the
    interpreter's recursion limit is unreadable rather than a crash (both become a ValueError,
    which `request.get_json` turns into a 400, or None when silent)."""

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_constant", _refuse_constant)
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
