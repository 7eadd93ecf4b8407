"""The application factory: reads like a table of contents, does no I/O."""

import logging
import os

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import cli, config, errors, queueing, sandbox, web
from portal.extensions import StrictJSONProvider, csrf, db, limiter, login_manager, migrate
from portal.timeutil import nairobi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Portal(Flask):
    json_provider_class = StrictJSONProvider  # no NaN or Infinity, no crash on deep nesting


def create_app(overrides: dict | None = None, *, part: str = "all") -> Flask:
    """The whole app, or with part="sandbox" the provider simulators alone (sandbox_wsgi.py)."""
    app = Portal(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        instance_path=config.INSTANCE_PATH,
    )
    app.config.update(config.load(overrides))  # overrides (tests) win over the environment and .env
    app.json.sort_keys = False  # answers keep the documented field order
    app.add_template_filter(nairobi)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    queueing.init_app(app)
    sandbox.init_app(app)
    errors.init_app(app)
    if part == "sandbox":
        return app

    import portal.services  # noqa: F401  (every rail registers its inbox interpreters and sweeper steps)
    from portal.api import checkout, gateway
    from portal.web import auth, dashboard, keys, payments, payouts, settings
    from portal.webhooks import daraja as daraja_webhooks

    for bp in (checkout.bp, gateway.bp, daraja_webhooks.bp):
        csrf.exempt(bp)  # authenticated by API key or callback token, not a session
        app.register_blueprint(bp)
    for bp in (auth.bp, dashboard.bp, payments.bp, payouts.bp, keys.bp, settings.bp):
        app.register_blueprint(bp)

    web.init_app(app)
    cli.init_app(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """WAL lets the live server, the worker and the tests read while one writes."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
