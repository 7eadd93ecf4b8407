"""The stations pages: a station's key is shown once and works, edits are checked by the
service, rotating (after a confirmation) and disabling stop the key, another merchant's station
is a 404, and each station lists what it dispensed."""

import re
from datetime import timedelta

from portal.extensions import db
from portal.models import Otp, Payment, Station
from portal.services import stations
from portal.timeutil import utcnow
from tests.conftest import AuthActions
from tests.helpers import stk_payment

PREVIEW = "/api/payments/preview"
NEW = {"code": "kilimani-1", "name": "Kilimani kiosk", "location": "Argwings Kodhek Rd", "pulses_per_liter": "450"}


def htmx(token: str) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": token}


def sign_in(auth, account) -> str:
    auth.login(account["email"], account["password"])
    return auth.csrf_token("/stations")


def shown_key(page: str) -> str | None:
    match = re.search(r'id="new-key"[^>]*value="([^"]+)"', page)
    return match.group(1) if match else None


def preview(app, key: str) -> int:
    answer = app.test_client().post(PREVIEW, json={"amount": 52}, headers={"Authorization": f"Bearer {key}"})
    return answer.status_code


def station_row(app, code: str) -> Station:
    with app.app_context():
        row = Station.query.filter_by(code=code).one()
        db.session.expunge(row)
        return row


def add(client, token, **fields):
    return client.post("/stations", data={**NEW, **fields, "csrf_token": token}, headers=htmx(token))


def test_the_pages_need_a_login(client):
    assert "/login" in client.get("/stations").headers["Location"]
    assert client.get("/stations", headers={"HX-Request": "true"}).status_code == 401
    assert "/login" in client.get("/stations/1").headers["Location"]


def test_the_list_shows_the_stations_and_is_in_the_navigation(client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    page = client.get("/stations").get_data(as_text=True)
    assert re.search(r'<a href="/stations" aria-current="page">Water stations</a>', page)
    for code in ("STATION001", "STATION002"):
        assert re.search(rf'<a href="/stations/\d+">{code}</a>', page)
    assert page.count(">active</span>") == 2 and "wsk_demo_" in page  # the keys' prefixes, never the keys
    assert accounts["station"]["key"] not in page and shown_key(page) is None


def test_a_new_station_shows_its_key_once_and_the_key_works(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    answer = add(client, token)
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    fragment = answer.get_data(as_text=True)
    assert "<html" not in fragment and fragment.startswith('<section id="station-form"')
    assert 'id="station-list" class="card" hx-swap-oob="true"' in fragment  # the list refreshes beside the form
    assert "Station KILIMANI-1 added: its key" in fragment and ">Copy</button>" in fragment
    assert "will not be shown again" in fragment
    key = shown_key(fragment)
    assert key and key.startswith("wsk_") and preview(app, key) == 200

    row = station_row(app, "KILIMANI-1")
    assert (row.merchant_id, row.name, row.location, row.pulses_per_liter) == (
        accounts["merchant"]["id"],
        "Kilimani kiosk",
        "Argwings Kodhek Rd",
        450,
    )
    for path in ("/stations", f"/stations/{row.id}"):
        page = client.get(path).get_data(as_text=True)
        assert key not in page and shown_key(page) is None and f"{key[:12]}…" in page


def test_a_plain_post_renders_the_whole_page_with_the_key(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/stations", data={**NEW, "csrf_token": token})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201 and "<html" in page and answer.headers["Cache-Control"] == "no-store"
    assert preview(app, shown_key(page)) == 200


def test_bad_details_are_refused_next_to_their_field(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    for fields, field_id, words in (
        ({"code": ""}, "station-code", "Give the station a code"),
        ({"code": "STATION 9"}, "station-code", "The station code is 1 to 32 letters"),
        ({"code": "station001"}, "station-code", "You already have a station with code STATION001."),
        ({"name": "  "}, "station-name", "Give the station a name"),
        ({"name": "x" * 121}, "station-name", "Keep the station&#39;s name to 120 characters or fewer."),
        ({"location": "Line 1\x07"}, "station-location", "must be on one line"),
        ({"pulses_per_liter": "lots"}, "station-pulses", "Enter the pulses per liter as a whole number"),
        ({"pulses_per_liter": "0"}, "station-pulses", "Pulses per liter is a whole number from 1 to 100,000."),
        ({"pulses_per_liter": ""}, "station-pulses", "Enter the pulses its flow meter gives per liter"),
    ):
        answer = add(client, token, **fields)
        fragment = answer.get_data(as_text=True)
        assert answer.status_code == 422 and "<html" not in fragment, fields
        assert re.search(rf'id="{field_id}-error"[^>]*>[^<]*{re.escape(words)}', fragment), (fields, fragment)
        assert shown_key(fragment) is None
    plain = client.post("/stations", data={**NEW, "code": "", "csrf_token": token})
    assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True)
    with app.app_context():
        assert Station.query.count() == 2  # the demo's two, nothing more


def test_a_station_is_renamed_moved_and_its_pulses_changed_but_keeps_its_code(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    demo = station_row(app, "STATION001")
    details = {"name": "Gate kiosk", "location": "Main gate", "pulses_per_liter": "1,200", "code": "HACKED"}
    answer = client.post(f"/stations/{demo.id}", data={**details, "csrf_token": token}, headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 200 and fragment.startswith('<section id="station-edit"')
    assert "Station STATION001 saved." in fragment
    assert '<h1 id="station-title" hx-swap-oob="true">Station STATION001: Gate kiosk</h1>' in fragment
    row = station_row(app, "STATION001")
    assert (row.name, row.location, row.pulses_per_liter, row.key_hash) == (
        "Gate kiosk",
        "Main gate",
        1200,
        demo.key_hash,
    )
    refused = client.post(
        f"/stations/{demo.id}",
        data={"name": "Other", "location": "", "pulses_per_liter": "100001", "csrf_token": token},
        headers=htmx(token),
    )
    assert refused.status_code == 422 and "Pulses per liter is a whole number from 1 to 100,000." in refused.text
    assert station_row(app, "STATION001").name == "Gate kiosk"  # nothing of a refused edit is kept
    plain = client.post(f"/stations/{demo.id}", data={"name": "Plain", "pulses_per_liter": "1000", "csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/stations/{demo.id}"
    assert "Station STATION001 saved." in client.get(f"/stations/{demo.id}").text


def test_rotating_asks_first_then_shows_the_new_key_once_and_the_old_one_stops(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    demo = station_row(app, "STATION001")
    old_key = accounts["station"]["key"]
    page = client.get(f"/stations/{demo.id}").text
    assert f'href="/stations/{demo.id}/rotate"' in page and "Yes, rotate the key" not in page
    assert "Nothing dispensed here yet" in page

    confirm = client.get(f"/stations/{demo.id}/rotate", headers=htmx(token))
    assert confirm.status_code == 200 and confirm.text.startswith('<section id="station-access"')
    assert "Rotate the key of STATION001?" in confirm.text and "Yes, rotate the key" in confirm.text
    assert station_row(app, "STATION001").key_hash == demo.key_hash and preview(app, old_key) == 200  # only asked
    assert "Yes, rotate the key" in client.get(f"/stations/{demo.id}/rotate").text  # without htmx: the page

    answer = client.post(f"/stations/{demo.id}/rotate", data={"csrf_token": token}, headers=htmx(token))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "The new key of STATION001" in answer.text
    new_key = shown_key(answer.text)
    assert new_key and new_key != old_key
    assert preview(app, old_key) == 401 and preview(app, new_key) == 200
    assert new_key not in client.get(f"/stations/{demo.id}").text
    assert preview(app, accounts["station2"]["key"]) == 200  # the other station keeps its key


def test_rotating_is_a_post_with_its_csrf_token(client, auth, accounts, app):
    sign_in(auth, accounts["merchant"])
    demo = station_row(app, "STATION001")
    refused = client.post(f"/stations/{demo.id}/rotate")  # no token: nothing changes, the page says so
    assert refused.status_code == 303 and "nothing was changed" in client.get(f"/stations/{demo.id}").text
    assert station_row(app, "STATION001").key_hash == demo.key_hash
    assert preview(app, accounts["station"]["key"]) == 200


def test_a_disabled_station_is_refused_until_enabled(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    demo = station_row(app, "STATION002")
    key = accounts["station2"]["key"]
    page = client.get(f"/stations/{demo.id}").text
    assert 'hx-confirm="Disable this station? Requests with its key will be refused."' in page
    answer = client.post(f"/stations/{demo.id}/disable", data={"csrf_token": token}, headers=htmx(token))
    assert answer.status_code == 200 and "Station STATION002 disabled" in answer.text and ">disabled<" in answer.text
    assert preview(app, key) == 401 and not station_row(app, "STATION002").active
    assert re.search(r"STATION002</a>(?:(?!</tr>).)*>disabled<", client.get("/stations").text, re.S)
    plain = client.post(f"/stations/{demo.id}/enable", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/stations/{demo.id}"
    assert "Station STATION002 enabled: its key works again." in client.get(f"/stations/{demo.id}").text
    assert preview(app, key) == 200


def test_another_merchants_station_is_a_404_and_not_listed(app, client, auth, accounts):
    demo = station_row(app, "STATION001")
    other = app.test_client()
    token = sign_in(AuthActions(other), accounts["other_merchant"])
    assert ">STATION001</a>" not in other.get("/stations").text
    assert other.get(f"/stations/{demo.id}").status_code == 404
    for action in ("rotate", "disable"):
        answer = other.post(f"/stations/{demo.id}/{action}", data={"csrf_token": token}, headers=htmx(token))
        assert answer.status_code == 404
    after = station_row(app, "STATION001")
    assert (after.key_hash, after.active) == (demo.key_hash, True)


def test_each_station_lists_the_codes_it_took_newest_first(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        here = stations.station_by_code(merchant_id, "STATION001")
        there = stations.station_by_code(merchant_id, "STATION002")
        now = utcnow()
        for n, (station, status, liters) in enumerate(
            [(here, "used", 10), (here, "in_progress", 4), (there, "used", 99), (None, "active", 7)]
        ):
            payment = stk_payment(merchant_id, f"WS-DISPENSE-{n}", status="completed")
            db.session.add(
                Otp(
                    merchant_id=merchant_id,
                    payment_id=payment.id,
                    code_hmac="0" * 64,
                    liters=liters,
                    status=status,
                    expires_at=now + timedelta(minutes=10),
                    station_id=station.id if station else None,
                    verified_at=now + timedelta(seconds=n) if station else None,
                )
            )
        db.session.commit()
        here_id, there_id = here.id, there.id
    sign_in(auth, accounts["merchant"])
    page = client.get(f"/stations/{here_id}").text
    shown = re.findall(r"<code>(WS-DISPENSE-\d)</code>", page)
    assert shown == ["WS-DISPENSE-1", "WS-DISPENSE-0"]  # this station's only, newest first
    assert ">in progress</span>" in page and ">used</span>" in page
    elsewhere = client.get(f"/stations/{there_id}").text
    assert re.findall(r"<code>(WS-DISPENSE-\d)</code>", elsewhere) == ["WS-DISPENSE-2"]
    with app.app_context():
        assert Payment.query.count() == 4
