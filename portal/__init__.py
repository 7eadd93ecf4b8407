"""The application factory: reads like a table of contents, does no I/O."""

import logging
import os

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from portal import cli, config, errors, queueing, sandbox, web
from portal.extensions import StrictJSONProvider, cors, csrf, db, end_reads_with_commit, limiter, login_manager, migrate
from portal.timeutil import nairobi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Portal(Flask):
    json_provider_class = StrictJSONProvider  # no NaN or Infinity, no crash on deep nesting


class RowId(IntegerConverter):
    """Every `<int:...>` in this app is a row id: one past the database's integer cannot name a
    row, so it does not match (404) rather than fail the query (PostgreSQL: integer out of range)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(overrides: dict | None = None, *, part: str = "all") -> Flask:
    """The whole app, or with part="sandbox" the provider simulators alone (sandbox_wsgi.py)."""
    app = Portal(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        instance_path=config.INSTANCE_PATH,
    )
    app.url_map.converters["int"] = RowId
    app.config.update(config.load(overrides))  # overrides (tests) win over the environment and .env
    app.json.sort_keys = False  # answers keep the documented field order
    app.add_template_filter(nairobi)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    errors.refuse_oversize_streams_first(app)
    db.init_app(app)
    end_reads_with_commit(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    if part != "sandbox":  # no simulator route is rate-limited: their process skips the limiter's hooks
        limiter.init_app(app)
    queueing.init_app(app)
    sandbox.init_app(app)
    errors.init_app(app)
    import portal.web.auth  # noqa: F401  (the user loader: every page's template reads current_user)

    if part == "sandbox":  # its pages (the virtual phone, the checkout) share the portal's filters and headers
        web.init_app(app)
        return app

    import portal.services  # noqa: F401  (every rail registers its inbox interpreters and sweeper steps)
    from portal.api import bookings, checkout, docs, gateway, water
    from portal.api import isp as isp_api
    from portal.web import auth, dashboard, escrow, keys, kiosk, payments, payouts, queues, settings, stations
    from portal.web import isp as isp_pages
    from portal.webhooks import daraja as daraja_webhooks
    from portal.webhooks import paystack as paystack_webhooks
    from portal.webhooks import sms as sms_webhooks

    for bp in (
        checkout.bp,
        gateway.bp,
        isp_api.bp,
        water.bp,
        bookings.bp,
        daraja_webhooks.bp,
        paystack_webhooks.bp,
        sms_webhooks.bp,
    ):
        csrf.exempt(bp)  # authenticated by API key, client id or callback token, not a session
        app.register_blueprint(bp)
    app.register_blueprint(docs.bp)  # the OpenAPI document of every route above, and its page
    pages = (
        auth.bp,
        dashboard.bp,
        payments.bp,
        payouts.bp,
        escrow.bp,
        stations.bp,
        keys.bp,
        settings.bp,
        isp_pages.bp,
        queues.bp,
    )
    for bp in (*pages, kiosk.bp):  # the kiosk: a page with no session, talking to the water API
        app.register_blueprint(bp)
    cors.init_app(app, resources=isp_api.CORS_RESOURCES)

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
