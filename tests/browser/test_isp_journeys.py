"""The internet packages journey in a real browser: a merchant adds a package and a storefront
client in the portal, a storefront page on another origin sells the package through the isp API
(CORS preflight and all), and deactivating the client shuts that storefront out."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, signed_in
from tests.conftest import wait_for


class _Storefront(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the handler's protocol names it)
        body = b"<!doctype html><title>Hotspot</title><h1>Buy internet</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def storefront_origin():
    """A hotspot's captive portal: a page of its own origin (another port), served for real so the
    browser treats it as the local page it is."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Storefront)
    # it looks for shutdown() every 20 ms (socketserver's default, 0.5 s, was the test's teardown)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def call(page, base: str, path: str, body: dict) -> dict:
    """fetch() from the storefront's origin with a JSON body: the browser preflights it first."""
    return page.evaluate(
        """async ([url, body]) => {
            const answer = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)});
            return {status: answer.status, body: await answer.json()};
        }""",
        [base + path, body],
    )


def test_a_storefront_on_another_origin_sells_a_package_until_its_client_is_deactivated(
    new_page, accounts, app, live_server, storefront_origin
):
    app.config["STATUS_QUERY_EVERY"] = 0.5
    portal = new_page()
    signed_in(portal, accounts["merchant"])
    portal.get_by_role("link", name="Internet packages").click()
    expect(portal.get_by_role("heading", name="Internet packages", level=1)).to_be_visible()

    portal.get_by_label("Package name").fill("Weekly 5 GB")
    portal.get_by_label("Price (KES, whole shillings)").fill("200")
    portal.get_by_role("button", name="Add package").click()
    package_row = portal.locator("#isp-packages tr", has_text="Weekly 5 GB")
    expect(package_row).to_contain_text("KES 200")
    package_id = package_row.locator("code").inner_text()

    portal.get_by_label("Client name").fill("Westlands hotspot")
    portal.get_by_role("button", name="Add client").click()
    client_row = portal.locator("#isp-clients tr", has_text="Westlands hotspot")
    expect(client_row).to_contain_text("active")
    client_id = client_row.locator("code").inner_text()
    expect(portal.locator("#isp-clients").get_by_role("status")).to_contain_text(f"Its client_id: {client_id}")

    shop = new_page()
    shop.goto(storefront_origin)
    started = call(
        shop,
        live_server,
        "/api/v1/payments/initiate",
        {"client_id": client_id, "package_id": package_id, "phone_number": "0712345678", "description": "Weekly"},
    )
    assert started["status"] == 200, started
    assert started["body"]["status"] == "pending"
    checkout = {"client_id": client_id, "checkout_id": started["body"]["checkout_id"]}

    def settled():
        answer = call(shop, live_server, "/api/v1/payments/status", checkout)
        return answer if answer["body"]["status"] != "pending" else None

    final = wait_for(settled, every=0.3, what="the storefront's payment to settle")
    assert final["body"]["status"] == "completed" and final["body"]["amount"] == 200
    assert re.fullmatch(r"PKG-\d{14}-[a-z0-9]{6}", final["body"]["reference"])

    portal.once("dialog", lambda dialog: dialog.accept())
    client_row.get_by_role("button", name="Deactivate client Westlands hotspot").click()
    expect(client_row).to_contain_text("inactive")
    expect(portal.locator("#isp-clients").get_by_role("status")).to_contain_text(
        "Client “Westlands hotspot” deactivated"
    )
    screenshot(portal, "isp-desktop")  # last: a screenshot leaves style="" on inputs, which htmx would copy
    refused = call(shop, live_server, "/api/v1/payments/status", checkout)
    assert refused == {"status": 403, "body": {"error": "Invalid or inactive client"}}  # readable cross-origin

    narrow = new_page(PHONE)
    signed_in(narrow, accounts["merchant"])
    narrow.goto("/isp")
    expect(narrow.locator("#isp-clients tr", has_text="Westlands hotspot")).to_be_visible()
    screenshot(narrow, "isp-phone")
