"""The Internet packages page: a merchant lists, adds, deactivates and reactivates its isp
clients and packages, the API follows at once, and merchants only ever touch their own."""

import re

import pytest
import requests

from portal.extensions import db
from portal.models import InternetPackage, IspClient
from tests.conftest import AuthActions


def htmx(token: str) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": token}


def sign_in(auth, account) -> str:
    assert auth.login(account["email"], account["password"]).status_code == 302
    return auth.csrf_token("/isp")


def status_of(live_server, client_id: str) -> int:
    """What the API answers this client for a payment it never made: 404 if the client is let in."""
    body = {"client_id": client_id, "checkout_id": "ws_CO_none"}
    return requests.post(f"{live_server}/api/v1/payments/status", json=body, timeout=30).status_code


def initiate(live_server, client_id: str, package_id: str) -> requests.Response:
    body = {"client_id": client_id, "package_id": package_id, "phone_number": "0712345678", "description": "Daily"}
    return requests.post(f"{live_server}/api/v1/payments/initiate", json=body, timeout=30)


def rows(app, model, merchant_id) -> list:
    with app.app_context():
        found = model.query.filter_by(merchant_id=merchant_id).all()
        for row in found:
            db.session.expunge(row)
        return found


def test_the_page_needs_a_login(client):
    assert "/login" in client.get("/isp").headers["Location"]
    assert client.get("/isp", headers={"HX-Request": "true"}).status_code == 401


def test_the_page_lists_the_merchants_clients_and_packages(client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    page = client.get("/isp").get_data(as_text=True)
    demo = accounts["isp"]
    assert "Demo hotspot" in page and f"<code>{demo['client_id']}</code>" in page
    assert re.search(rf'id="client-{demo["inactive_client_id"]}">(?:(?!</tr>).)*>inactive<', page, re.S)
    assert re.search(r"Daily 1 GB</td>\s*<td[^>]*>KES 50</td>", page)
    assert 'href="/isp" aria-current="page">Internet packages</a>' in page


def test_a_new_client_can_take_payments_at_once(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/isp/clients", data={"name": "  Kilimani hotspot "}, headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 201 and "<html" not in fragment
    assert fragment.lstrip().startswith('<section id="isp-clients"')
    [new] = [c for c in rows(app, IspClient, accounts["merchant"]["id"]) if c.name == "Kilimani hotspot"]
    assert f"Client “Kilimani hotspot” added. Its client_id: {new.id}" in fragment
    assert new.active and status_of(live_server, new.id) == 404
    assert initiate(live_server, new.id, accounts["isp"]["package_id"]).status_code == 200


def test_a_new_package_is_sold_at_its_price(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/isp/packages", data={"name": "Weekly 5 GB", "price": "1,500"}, headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 201 and fragment.lstrip().startswith('<section id="isp-packages"')
    assert re.search(r"Weekly 5 GB</td>\s*<td[^>]*>KES 1,500</td>", fragment)
    [package] = [p for p in rows(app, InternetPackage, accounts["merchant"]["id"]) if p.name == "Weekly 5 GB"]
    assert package.price == 150_000 and package.active
    started = initiate(live_server, accounts["isp"]["client_id"], package.id)
    assert started.status_code == 200
    status = requests.post(
        f"{live_server}/api/v1/payments/status",
        json={"client_id": accounts["isp"]["client_id"], "checkout_id": started.json()["checkout_id"]},
        timeout=30,
    )
    assert status.json()["amount"] == 1500


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"name": "", "price": "100"}, "package-name", "Give the package a name"),
        ({"name": "x" * 121, "price": "100"}, "package-name", "120 characters or fewer"),
        ({"name": "Daily", "price": ""}, "package-price", "Enter the price in whole shillings."),
        ({"name": "Daily", "price": "12.50"}, "package-price", "whole shillings, digits only"),
        ({"name": "Daily", "price": "abc"}, "package-price", "whole shillings, digits only"),
        ({"name": "Daily", "price": "0"}, "package-price", "from 1 to 250,000"),
        ({"name": "Daily", "price": "250001"}, "package-price", "from 1 to 250,000"),
    ],
)
def test_a_bad_package_is_refused_next_to_the_field(app, client, auth, accounts, data, field, message):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/isp/packages", data=data, headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "<html" not in fragment
    assert re.search(rf'id="{field}-error"[^>]*>[^<]*{re.escape(message)}', fragment), fragment
    assert len(rows(app, InternetPackage, accounts["merchant"]["id"])) == 1  # the demo package only


def test_a_client_without_a_name_is_refused(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/isp/clients", data={"name": "   "}, headers=htmx(token))
    assert answer.status_code == 422 and "Give the client a name" in answer.get_data(as_text=True)
    plain = client.post("/isp/clients", data={"name": "", "csrf_token": token})
    assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True)
    assert len(rows(app, IspClient, accounts["merchant"]["id"])) == 2


def test_deactivating_a_client_shuts_its_storefront_out_until_reactivated(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    client_id = accounts["isp"]["client_id"]
    page = client.get("/isp").get_data(as_text=True)
    assert 'hx-confirm="Deactivate this client? Its storefront\'s payment requests will be refused."' in page

    answer = client.post(f"/isp/clients/{client_id}/deactivate", headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 200 and fragment.lstrip().startswith('<section id="isp-clients"')
    assert "Client “Demo hotspot” deactivated: its storefront&#39;s requests are now refused." in fragment
    assert status_of(live_server, client_id) == 403

    again = client.post(f"/isp/clients/{client_id}/activate", data={"csrf_token": token})  # a plain form: PRG
    assert again.status_code == 303 and again.headers["Location"].endswith("/isp")
    assert "Client “Demo hotspot” is active again." in client.get("/isp").get_data(as_text=True)
    assert status_of(live_server, client_id) == 404


def test_a_deactivated_package_can_no_longer_be_bought(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    package_id = accounts["isp"]["package_id"]
    answer = client.post(f"/isp/packages/{package_id}/deactivate", headers=htmx(token))
    assert answer.status_code == 200 and "it can no longer be bought" in answer.get_data(as_text=True)
    refused = initiate(live_server, accounts["isp"]["client_id"], package_id)
    assert refused.status_code == 400 and refused.json() == {"error": "Package is inactive"}
    client.post(f"/isp/packages/{package_id}/activate", headers=htmx(token))
    assert initiate(live_server, accounts["isp"]["client_id"], package_id).status_code == 200


def test_another_merchant_can_neither_see_nor_change_them(app, client, auth, accounts, live_server):
    demo = accounts["isp"]
    other = app.test_client()
    token = sign_in(AuthActions(other), accounts["other_merchant"])
    page = other.get("/isp").get_data(as_text=True)
    assert demo["client_id"] not in page and "Demo hotspot" not in page and ">Daily 1 GB<" not in page
    for path in (
        f"/isp/clients/{demo['client_id']}/deactivate",
        f"/isp/packages/{demo['package_id']}/deactivate",
        f"/isp/clients/{demo['inactive_client_id']}/activate",
    ):
        for headers in ({}, htmx(token)):
            assert other.post(path, data={"csrf_token": token}, headers=headers).status_code == 404
    assert status_of(live_server, demo["client_id"]) == 404  # still active
    assert status_of(live_server, demo["inactive_client_id"]) == 403  # still inactive
    assert initiate(live_server, demo["client_id"], demo["package_id"]).status_code == 200


def test_changes_are_posts_with_a_csrf_token(app, client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    client_id = accounts["isp"]["client_id"]
    assert client.get(f"/isp/clients/{client_id}/deactivate").status_code == 405
    assert client.post(f"/isp/clients/{client_id}/deactivate").status_code == 303  # refused, told why
    assert client.post("/isp/packages", data={"name": "Sneaky", "price": "1"}).status_code == 303
    with app.app_context():
        assert db.session.get(IspClient, client_id).active
        assert InternetPackage.query.filter_by(name="Sneaky").count() == 0
