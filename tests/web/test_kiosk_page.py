"""The kiosk page: a static shell for any station code, with no login and nothing of a merchant's
in it (the key it is paired with decides the merchant); its settings and the water API's
addresses for its script; one address per code; and the stations list links to it."""

import re

from tests.web.test_stations_pages import sign_in


def test_the_page_is_the_same_shell_for_any_code_and_shows_nothing_of_a_merchant(client, accounts):
    page = client.get("/kiosk/STATION001")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for private in ("Demo station 1", "Demo Shop", accounts["station"]["key"], "csrf"):
        assert private not in html
    assert "Set-Cookie" not in page.headers  # no session: a kiosk is nobody's login
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
    unknown = client.get("/kiosk/NOBODY-HAS-THIS")  # no lookup by code: the key will decide
    assert unknown.status_code == 200
    assert unknown.get_data(as_text=True) == html.replace("STATION001", "NOBODY-HAS-THIS")


def test_the_page_carries_its_settings_and_the_api_addresses(app, client):
    app.config.update(
        KIOSK_FLOW_LITERS_PER_SECOND=0.5, KIOSK_IDLE_RETURN_SECONDS=7, KIOSK_ABANDON_SECONDS=45, OTP_EXPIRY_MINUTES=12
    )
    html = client.get("/kiosk/STATION001").get_data(as_text=True)
    expected = {
        "data-station": "STATION001",
        "data-flow-liters-per-second": "0.5",
        "data-idle-return-seconds": "7",
        "data-abandon-seconds": "45",
        "data-code-minutes": "12",
        "data-url-whoami": "/api/stations/whoami",
        "data-url-preview": "/api/payments/preview",
        "data-url-initiate": "/api/payments/mpesa/initiate",
        "data-url-status": "/api/payments/status/WS-REFERENCE",
        "data-url-verify": "/api/stations/otp/verify",
        "data-url-complete": "/api/stations/otp/complete",
        "data-reference-placeholder": "WS-REFERENCE",
    }
    for name, value in expected.items():
        assert f'{name}="{value}"' in html, name
    assert '<script src="/static/kiosk.js" defer></script>' in html
    assert client.get("/static/kiosk.js").status_code == 200 and client.get("/static/kiosk.css").status_code == 200


def test_one_address_per_code(client):
    lower = client.get("/kiosk/station001")
    assert (lower.status_code, lower.headers["Location"]) == (308, "/kiosk/STATION001")
    for bad in ("-STATION", "A" * 33, "STATION 1", "ST%C3%84TION"):
        assert client.get(f"/kiosk/{bad}").status_code == 404, bad


def test_the_stations_list_opens_each_kiosk(client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    page = client.get("/stations").get_data(as_text=True)
    for code in ("STATION001", "STATION002"):
        assert re.search(
            rf'<a href="/kiosk/{code}" target="_blank" rel="noopener"\s+aria-label="Open kiosk {code}">Open kiosk</a>',
            page,
        )
