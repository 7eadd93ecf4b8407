"""The isp commands: seed-demo's storefront ids, and clients and packages managed from the shell."""

import json
import re

import requests

from portal.extensions import db
from portal.models import InternetPackage, IspClient

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def run(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_seed_demo_prints_the_same_isp_ids_every_time(runner, app, live_server):
    first = json.loads(run(runner, "seed-demo", "--json"))
    again = json.loads(run(runner, "seed-demo", "--json"))
    assert first["isp"] == again["isp"]
    demo = first["isp"]
    assert set(demo) == {"client_id", "inactive_client_id", "package_id", "package_price"}
    assert demo["package_price"] == 50
    with app.app_context():
        assert IspClient.query.count() == 2 and InternetPackage.query.count() == 1
        package = db.session.get(InternetPackage, demo["package_id"])
        assert package.price == 5000 and package.merchant_id == first["merchant"]["id"]
        assert not db.session.get(IspClient, demo["inactive_client_id"]).active
    body = {"client_id": demo["client_id"], "package_id": demo["package_id"], "phone_number": "0712345678"}
    answer = requests.post(f"{live_server}/api/v1/payments/initiate", json={**body, "description": "Demo"}, timeout=30)
    assert answer.status_code == 200, answer.text
    inactive = requests.post(
        f"{live_server}/api/v1/payments/status",
        json={"client_id": demo["inactive_client_id"], "checkout_id": "x"},
        timeout=30,
    )
    assert inactive.status_code == 403
    text = run(runner, "seed-demo")
    assert f"client_id {demo['client_id']}" in text and f"package_id {demo['package_id']}" in text


def test_clients_are_created_listed_and_deactivated(runner, app, accounts, live_server):
    email = accounts["merchant"]["email"]
    client_id = run(runner, "isp", "client", "create", "--email", email.upper(), "--name", "Westlands hotspot").strip()
    assert re.fullmatch(UUID, client_id)
    listed = run(runner, "isp", "client", "list", "--email", email)
    assert re.search(rf"^{client_id}  active    Westlands hotspot$", listed, re.M)
    assert "Retired kiosk" in listed  # the demo's inactive one
    assert client_id not in run(runner, "isp", "client", "list", "--email", accounts["other_merchant"]["email"])

    status = {"client_id": client_id, "checkout_id": "ws_CO_x"}
    assert requests.post(f"{live_server}/api/v1/payments/status", json=status, timeout=30).status_code == 404
    assert "deactivated" in run(runner, "isp", "client", "deactivate", client_id, "--email", email)
    assert requests.post(f"{live_server}/api/v1/payments/status", json=status, timeout=30).status_code == 403
    assert re.search(
        rf"^{client_id}  inactive  Westlands hotspot$", run(runner, "isp", "client", "list", "--email", email), re.M
    )


def test_a_merchant_cannot_deactivate_anothers_client_from_the_shell(runner, app, accounts):
    other = runner.invoke(
        args=[
            "isp",
            "client",
            "deactivate",
            accounts["isp"]["client_id"],
            "--email",
            accounts["other_merchant"]["email"],
        ]
    )
    assert other.exit_code != 0 and "has no client" in other.output
    with app.app_context():
        assert db.session.get(IspClient, accounts["isp"]["client_id"]).active
    nobody = runner.invoke(args=["isp", "client", "create", "--email", "nobody@example.com", "--name", "X"])
    assert nobody.exit_code != 0 and "no user with email" in nobody.output
    unnamed = runner.invoke(args=["isp", "client", "create", "--email", accounts["merchant"]["email"], "--name", " "])
    assert unnamed.exit_code != 0 and "Give the client a name" in unnamed.output


def test_packages_are_created_in_whole_shillings_and_listed(runner, app, accounts):
    email = accounts["merchant"]["email"]
    package_id = run(runner, "isp", "package", "create", "--email", email, "--name", "Monthly 30 GB", "--price", "2500")
    package_id = package_id.strip()
    with app.app_context():
        assert db.session.get(InternetPackage, package_id).price == 250_000
    listed = run(runner, "isp", "package", "list", "--email", email)
    assert re.search(rf"^{package_id}  active    KES   2,500  Monthly 30 GB$", listed, re.M)
    assert "Daily 1 GB" in listed
    for price in ("0", "250001", "12.5"):
        bad = runner.invoke(args=["isp", "package", "create", "--email", email, "--name", "X", "--price", price])
        assert bad.exit_code != 0
    with app.app_context():
        assert InternetPackage.query.filter_by(name="X").count() == 0
