"""Flask commands: seed-demo, merchant create, apikey create, sweep, serve."""

import json
import signal
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.extensions import db
from portal.models import ApiKey, User
from portal.services import merchants


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(merchant_group)
    app.cli.add_command(apikey_group)
    app.cli.add_command(sweep)
    app.cli.add_command(serve)


@click.command("seed-demo")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def seed_demo(as_json: bool):
    """Create the demo merchants (once) and print their logins and API keys."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("seed-demo is for development and sandbox installs only")
    accounts = merchants.seed_demo()
    if as_json:
        click.echo(json.dumps(accounts))
        return
    for label, acc in accounts.items():
        click.echo(f"{label}: {acc['name']}\n  login:   {acc['email']} / {acc['password']}")
        click.echo(f"  API key: {acc['api_key']}")


@click.group("merchant")
def merchant_group():
    """Manage merchants."""


@merchant_group.command("create")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--sandbox/--no-sandbox", default=None, help="Give it sandbox Daraja credentials.")
@with_appcontext
def merchant_create(name, email, password, sandbox):
    """Create a merchant with a portal login."""
    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    try:
        merchant = merchants.create_merchant(name, email, password, sandbox_credentials=sandbox)
    except (merchants.MerchantExists, merchants.NoSandbox) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"merchant {merchant.id} created: {merchant.name} ({email})")


@click.group("apikey")
def apikey_group():
    """Manage API keys."""


@apikey_group.command("create")
@click.option("--email", required=True, help="A portal user of the merchant.")
@click.option("--name", default="CLI key")
@with_appcontext
def apikey_create(email, name):
    """Create an API key for a merchant; the key is printed once."""
    user = User.query.filter_by(email=email.strip().lower()).first()
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    _row, key = ApiKey.issue(user.merchant, name)
    db.session.commit()
    click.echo(key)


@click.command("sweep")
@with_appcontext
def sweep():
    """Run the sweeper once (it also runs on the worker's schedule)."""
    from portal.services.sweeper import sweep as run

    click.echo(json.dumps(run()))


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host, port):
    """Serve the app; without REDIS_URL, with the in-process worker (embedded mode)."""
    from werkzeug.serving import WSGIRequestHandler, run_simple

    from portal.queueing import BackgroundWorker

    class PathOnlyLog(WSGIRequestHandler):
        """Logs each request's path without its query string, where callback URLs carry their token
        (gunicorn.conf.py does the same in production)."""

        def log_request(self, code="-", size="-"):
            if hasattr(self, "path"):  # the response is under way: the app has read the query string
                self.path = self.path.split("?", 1)[0]
            super().log_request(code, size)

    app = current_app._get_current_object()
    if not app.config["REDIS_URL"]:
        app.extensions["redis"].ping()  # starts the embedded Valkey server now, not on the first request
        BackgroundWorker(app).start()
        click.echo(
            f"embedded mode: Valkey server (pid {app.extensions['embedded_valkey'].pid}) and in-process "
            "worker running (set REDIS_URL and run worker.py to scale out)"
        )
    # SIGTERM (a process manager's stop) exits like Ctrl-C, so exit handlers stop the embedded server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(host, port, app, threaded=True, use_reloader=False, request_handler=PathOnlyLog)
