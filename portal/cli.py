"""Flask commands: seed-demo, merchant create, apikey create, isp (clients and packages), station
(water stations and their keys), sweep, serve."""

import json
import signal
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.extensions import db
from portal.models import ApiKey, IspClient, User
from portal.services import isp, merchants, stations


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(merchant_group)
    app.cli.add_command(apikey_group)
    app.cli.add_command(isp_group)
    app.cli.add_command(station_group)
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
    demo_isp = accounts.pop("isp")
    demo_stations = [accounts.pop(label) for label in merchants.DEMO_STATIONS]
    for label, acc in accounts.items():
        click.echo(f"{label}: {acc['name']}\n  login:   {acc['email']} / {acc['password']}")
        click.echo(f"  API key: {acc['api_key']}")
        if acc["paystack_secret_key"]:
            click.echo(f"  Paystack: {acc['paystack_secret_key']} / {acc['paystack_public_key']}")
    click.echo(f"isp (merchant): client_id {demo_isp['client_id']} (inactive: {demo_isp['inactive_client_id']})")
    click.echo(f"  package_id {demo_isp['package_id']} (KES {demo_isp['package_price']})")
    for station in demo_stations:
        click.echo(f"station {station['id']} (merchant): key {station['key']}")
    _describe_sms()


def _describe_sms() -> None:
    """How the demo merchants' SMS go out (they have no AT account of their own), and where their
    delivery reports would come from."""
    from portal.services.sms_reports import delivery_report_url

    config = current_app.config
    if not config["SANDBOX"]:
        return
    click.echo("sms: sent through the Africa's Talking simulator (username sandbox), read at /sandbox/phone/<number>")
    if config["SANDBOX_AT_DELIVERY_REPORT_URL"]:
        click.echo(f"  delivery reports go to {config['SANDBOX_AT_DELIVERY_REPORT_URL']}")
    else:
        click.echo(f"  for delivery reports, set SANDBOX_AT_DELIVERY_REPORT_URL={delivery_report_url()}")


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


def _merchant_id(email: str) -> int:
    user = User.query.filter_by(email=email.strip().lower()).first()
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user.merchant_id


@click.group("isp")
def isp_group():
    """Manage internet package clients (storefronts) and packages."""


@isp_group.group("client")
def isp_client_group():
    """A merchant's clients: the client_id their storefronts send."""


@isp_client_group.command("create")
@click.option("--email", required=True, help="A portal user of the merchant.")
@click.option("--name", required=True)
@with_appcontext
def isp_client_create(email, name):
    """Create an active client; its client_id is printed."""
    try:
        client = isp.create_client(_merchant_id(email), name)
    except isp.IspInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    click.echo(client.id)


@isp_client_group.command("list")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def isp_client_list(email):
    """List the merchant's clients: client_id, status, name."""
    for client in isp.clients_of(_merchant_id(email)):
        click.echo(f"{client.id}  {'active  ' if client.active else 'inactive'}  {client.name}")


@isp_client_group.command("deactivate")
@click.argument("client_id")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def isp_client_deactivate(client_id, email):
    """Deactivate a client: its storefront's requests are refused from now on."""
    client = IspClient.get_for_merchant(_merchant_id(email), id=client_id.strip().lower())
    if client is None:
        raise click.ClickException(f"the merchant of {email} has no client {client_id}")
    isp.set_active(client, False)
    click.echo(f"client {client.id} ({client.name}) deactivated")


@isp_group.group("package")
def isp_package_group():
    """A merchant's internet packages: what customers buy, at the package's price."""


@isp_package_group.command("create")
@click.option("--email", required=True, help="A portal user of the merchant.")
@click.option("--name", required=True)
@click.option("--price", required=True, type=int, help="Whole shillings (KES).")
@with_appcontext
def isp_package_create(email, name, price):
    """Create an active package; its package_id is printed."""
    try:
        package = isp.create_package(_merchant_id(email), name, price)
    except isp.IspInputError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(package.id)


@isp_package_group.command("list")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def isp_package_list(email):
    """List the merchant's packages: package_id, status, price, name."""
    for package in isp.packages_of(_merchant_id(email)):
        status = "active  " if package.active else "inactive"
        click.echo(f"{package.id}  {status}  KES {package.price // 100:>7,}  {package.name}")


@click.group("station")
def station_group():
    """Manage a merchant's water stations and their keys."""


def _station(email: str, code: str):
    station = stations.station_by_code(_merchant_id(email), code)
    if station is None:
        raise click.ClickException(f"the merchant of {email} has no station {code}")
    return station


@station_group.command("create")
@click.option("--email", required=True, help="A portal user of the merchant.")
@click.option("--code", required=True, help="What requests name the station by, e.g. STATION001.")
@click.option("--name", required=True)
@click.option("--location", default="")
@click.option("--pulses-per-liter", type=int, default=stations.DEFAULT_PULSES_PER_LITER, show_default=True)
@with_appcontext
def station_create(email, code, name, location, pulses_per_liter):
    """Create an active station; its key is printed once."""
    try:
        _row, key = stations.create_station(_merchant_id(email), code, name, location, pulses_per_liter)
    except stations.StationInputError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key)


@station_group.command("list")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def station_list(email):
    """List the merchant's stations: code, status, key prefix, pulses per liter, name."""
    for station in stations.stations_of(_merchant_id(email)):
        status = "active  " if station.active else "disabled"
        click.echo(f"{station.code}  {status}  {station.key_prefix}…  {station.pulses_per_liter:>6}  {station.name}")


@station_group.command("rotate")
@click.argument("code")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def station_rotate(code, email):
    """Give a station a new key, printed once; the old one is refused from now on."""
    try:
        click.echo(stations.rotate_key(_station(email, code)))
    except stations.StationChanged as exc:
        raise click.ClickException(str(exc)) from None


def _switch(code: str, email: str, active: bool) -> None:
    station = _station(email, code)
    stations.set_active(station, active)
    click.echo(f"station {station.code} ({station.name}) {'enabled' if active else 'disabled'}")


@station_group.command("disable")
@click.argument("code")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def station_disable(code, email):
    """Disable a station: its key is refused until it is enabled again."""
    _switch(code, email, False)


@station_group.command("enable")
@click.argument("code")
@click.option("--email", required=True, help="A portal user of the merchant.")
@with_appcontext
def station_enable(code, email):
    """Enable a disabled station: its key works again."""
    _switch(code, email, True)


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
