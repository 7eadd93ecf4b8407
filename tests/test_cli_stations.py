"""The station commands: seed-demo's two stations with working keys however often it runs, and
stations created, listed, rotated, disabled and enabled from the shell."""

import json
import re

import requests

from portal.extensions import db
from portal.models import Station

PREVIEW = "/api/payments/preview"
KEY = r"wsk_[A-Za-z0-9_-]{43}"


def run(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(runner, *args) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code != 0, result.output
    return result.output


def preview(live_server, key: str) -> int:
    answer = requests.post(
        live_server + PREVIEW, json={"amount": 52}, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return answer.status_code


def test_seed_demo_prints_two_stations_whose_keys_always_work(runner, app, live_server):
    first = json.loads(run(runner, "seed-demo", "--json"))
    assert first["station"]["id"] == "STATION001" and first["station2"]["id"] == "STATION002"
    assert first["station"]["key"].startswith("wsk_demo_") and first["station"]["key"] != first["station2"]["key"]
    assert preview(live_server, first["station"]["key"]) == preview(live_server, first["station2"]["key"]) == 200
    email = first["merchant"]["email"]
    run(runner, "station", "rotate", "STATION001", "--email", email)
    run(runner, "station", "disable", "STATION002", "--email", email)
    assert preview(live_server, first["station"]["key"]) == preview(live_server, first["station2"]["key"]) == 401
    again = json.loads(run(runner, "seed-demo", "--json"))
    assert again == first  # the same keys, working again
    assert preview(live_server, again["station"]["key"]) == preview(live_server, again["station2"]["key"]) == 200
    with app.app_context():
        assert Station.query.count() == 2
        assert {s.merchant_id for s in Station.query} == {first["merchant"]["id"]}
    text = run(runner, "seed-demo")
    assert f"station STATION001 (merchant): key {first['station']['key']}" in text
    assert f"station STATION002 (merchant): key {first['station2']['key']}" in text


def test_a_station_is_created_listed_rotated_disabled_and_enabled(runner, app, accounts, live_server):
    email = accounts["merchant"]["email"]
    key = run(
        runner,
        *("station", "create", "--email", email.upper(), "--code", "kilimani-1", "--name", "Kilimani kiosk"),
        *("--location", "Argwings Kodhek Rd", "--pulses-per-liter", "450"),
    ).strip()
    assert re.fullmatch(KEY, key) and preview(live_server, key) == 200
    with app.app_context():
        station = Station.query.filter_by(code="KILIMANI-1").one()  # codes are kept in capitals
        details = (station.name, station.location, station.pulses_per_liter)
        assert details == ("Kilimani kiosk", "Argwings Kodhek Rd", 450)
        assert station.key_prefix == key[:12] and key not in (station.key_hash, station.key_prefix)
        db.session.expunge(station)
    listed = run(runner, "station", "list", "--email", email)
    assert re.search(rf"^KILIMANI-1  active    {re.escape(key[:12])}…     450  Kilimani kiosk$", listed, re.M)
    assert "STATION001" in listed and "KILIMANI-1" not in run(
        runner, "station", "list", "--email", accounts["other_merchant"]["email"]
    )

    new_key = run(runner, "station", "rotate", "kilimani-1", "--email", email).strip()
    assert re.fullmatch(KEY, new_key) and new_key != key
    assert preview(live_server, key) == 401 and preview(live_server, new_key) == 200

    assert "disabled" in run(runner, "station", "disable", "KILIMANI-1", "--email", email)
    assert preview(live_server, new_key) == 401
    assert re.search(r"^KILIMANI-1  disabled", run(runner, "station", "list", "--email", email), re.M)
    assert "enabled" in run(runner, "station", "enable", "KILIMANI-1", "--email", email)
    assert preview(live_server, new_key) == 200


def test_the_commands_refuse_what_they_cannot_do(runner, accounts):
    email, other = accounts["merchant"]["email"], accounts["other_merchant"]["email"]
    create = ("station", "create", "--email", email, "--name", "Kiosk")
    assert "already have a station with code STATION001" in fails(runner, *create, "--code", "station001")
    assert "The station code is 1 to 32 letters" in fails(runner, *create, "--code", "STATION 3")
    assert "Pulses per liter is a whole number from 1 to 100,000" in fails(
        runner, *create, "--code", "S3", "--pulses-per-liter", "0"
    )
    assert "Give the station a name" in fails(runner, *create[:4], "--code", "S3", "--name", " ")
    assert "no user with email nobody@example.com" in fails(
        runner, "station", "create", "--email", "nobody@example.com", "--code", "S3", "--name", "K"
    )
    # another merchant's station is not theirs to touch
    for command in ("rotate", "disable", "enable"):
        assert f"the merchant of {other} has no station STATION001" in fails(
            runner, "station", command, "STATION001", "--email", other
        )
