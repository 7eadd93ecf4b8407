"""Unbound extension singletons; create_app() binds them. Nothing here connects. And the app's
JSON provider, which every `request.get_json()` goes through."""

import logging
from contextlib import contextmanager
from functools import cache

from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, MetaData, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached

log = logging.getLogger(__name__)

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
cors = CORS()  # bound to the resources of the APIs browsers call (api/isp.py)


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


@contextmanager
def single_statement():
    """A connection for statements that need no transaction around them: the open transaction's
    when the session has one (a test's, say: they join it and commit with it), else a
    connection of its own in autocommit, outside the session (no BEGIN and COMMIT round trips,
    no session bookkeeping), handed back to the pool when the block ends."""
    session = db.session()
    if session.in_transaction():
        yield session.connection()
        return
    with _autocommitting(db.engine).connect() as connection:
        yield connection


@cache
def _autocommitting(engine):
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def end_reads_with_commit(app) -> None:
    """A request that only read ends its transaction with COMMIT, not ROLLBACK. psycopg forgets
    every statement it has prepared on a connection whenever that connection rolls back, so
    each health check, poll or page that rolled back its reads made the next hot-path
    statements on its pooled connection be parsed and planned afresh. A request that wrote
    anything left uncommitted, or failed, still rolls back: this only commits a transaction
    whose every statement was a SELECT and whose session holds no change. Registered after
    Flask-SQLAlchemy's own teardown, so it runs first (teardowns run in reverse)."""

    @app.teardown_appcontext
    def _commit_reads(exc):
        if exc is not None or not db.session.registry.has():
            return
        session = db.session()
        if not session.in_transaction() or session.new or session.dirty or session.deleted:
            return
        if _WROTE in session.connection().info:  # the transaction's connection (one database)
            return
        try:
            with loaded_after_commit():  # as a close would, it leaves the objects loaded for whoever holds them
                session.commit()
        except Exception:  # nothing was written, so nothing is lost: the session's removal rolls back
            log.warning("could not end a read-only transaction with COMMIT", exc_info=True)


_WROTE = "portal_wrote"  # Connection.info: a statement other than a SELECT ran in the open transaction


@event.listens_for(Engine, "begin")
def _transaction_begins(connection) -> None:
    connection.info.pop(_WROTE, None)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(connection, _cursor, statement, _parameters, _context, _executemany) -> None:
    if not statement.startswith("SELECT"):  # anything else may have written: never committed for it
        connection.info[_WROTE] = True


def insert_loaded(model, **fields):
    """Adds a `model` row by one `INSERT ... RETURNING id` and returns the instance as a query
    would have loaded it: every attribute set (the columns' Python defaults applied), so it is
    never read back, and no unit-of-work flush runs. For hot paths that create one row."""
    attrs, row = loaded_row(model, fields)
    return attach_loaded(model, db.session.connection().execute(_inserting(model.__table__), row).scalar_one(), attrs)


def loaded_row(model, fields: dict) -> tuple[dict, dict]:
    """`fields` completed with the columns' Python defaults (None where there is none): by
    attribute name, and by column key for an INSERT."""
    attrs = {}
    for attr in model.__mapper__.column_attrs:
        column = attr.columns[0]
        if column.primary_key:
            continue
        if attr.key in fields:
            attrs[attr.key] = fields[attr.key]
        elif column.default is not None and column.default.is_scalar:
            attrs[attr.key] = column.default.arg
        elif column.default is not None and column.default.is_callable:
            attrs[attr.key] = column.default.arg(None)
        else:
            attrs[attr.key] = None
    row = {model.__mapper__.get_property(name).columns[0].key: value for name, value in attrs.items()}
    return attrs, row


def attach_loaded(model, ident: int, attrs: dict):
    """The instance of a row just inserted with `attrs`, persistent in the session as if loaded."""
    instance = model(id=ident, **attrs)
    make_transient_to_detached(instance)
    db.session.add(instance)  # nothing left to insert
    return instance


def dialect_insert(model):
    """The database's own INSERT of `model` (PostgreSQL's or SQLite's), for what only the dialects
    have: `.on_conflict_do_nothing(...)` where a unique key may already hold the row."""
    return (postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite).insert(model)


@cache
def _inserting(table):
    return insert(table).returning(table.c.id)


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
