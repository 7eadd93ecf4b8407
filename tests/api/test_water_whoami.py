"""GET /api/stations/whoami: how a kiosk checks the key it is given. A station's key answers its
own station and its merchant's pricing, and is refused for another station's code; an API key
names the station; rotated, disabled and unknown keys are 401, all in the water envelope."""

import pytest

from portal.extensions import db
from portal.models import Merchant
from portal.services import stations
from portal.services.water_pricing import WaterPricing, save_pricing

WHOAMI = "/api/stations/whoami"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def station_key(accounts):
    return accounts["station"]["key"]


def test_a_station_key_answers_its_station_and_the_default_pricing(client, station_key):
    for path in (WHOAMI, f"{WHOAMI}?stationId=STATION001"):
        answer = client.get(path, headers=bearer(station_key))
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {
            "success": True,
            "message": "This key speaks for station STATION001",
            "data": {
                "stationId": "STATION001",
                "name": "Demo station 1",
                "location": "",
                "pulsesPerLiter": 1000,
                "merchantName": "Demo Shop",
                "pricing": {
                    "pricePerLiter": 5,
                    "currency": "KES",
                    "roundingStrategy": "nearest",
                    "minAmount": 5,
                    "maxAmount": 10_000,
                },
            },
        }


def test_the_pricing_is_the_merchants_own(app, client, accounts, station_key):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        save_pricing(merchant, WaterPricing(price_per_liter=7, rounding="up", min_amount=20, max_amount=700))
    pricing = client.get(WHOAMI, headers=bearer(station_key)).get_json()["data"]["pricing"]
    assert pricing == {
        "pricePerLiter": 7,
        "currency": "KES",
        "roundingStrategy": "up",
        "minAmount": 20,
        "maxAmount": 700,
    }


def test_a_key_of_another_station_is_refused_for_this_code(client, accounts):
    answer = client.get(f"{WHOAMI}?stationId=STATION001", headers=bearer(accounts["station2"]["key"]))
    assert answer.status_code == 403
    assert answer.get_json() == {
        "success": False,
        "message": "This key belongs to station STATION002",
        "error": "STATION_MISMATCH",
    }


def test_unknown_rotated_and_disabled_keys_are_401(app, client, accounts, station_key):
    assert client.get(WHOAMI).status_code == 401
    assert client.get(WHOAMI, headers=bearer("wsk_not-a-key")).get_json()["error"] == "UNAUTHORIZED"
    with app.app_context():
        station = stations.station_by_code(accounts["merchant"]["id"], "STATION001")
        new_key = stations.rotate_key(station)
    assert client.get(WHOAMI, headers=bearer(station_key)).status_code == 401
    assert client.get(WHOAMI, headers=bearer(new_key)).status_code == 200
    with app.app_context():
        stations.set_active(stations.station_by_code(accounts["merchant"]["id"], "STATION001"), False)
    assert client.get(WHOAMI, headers=bearer(new_key)).status_code == 401


def test_an_api_key_names_the_station_and_finds_only_its_merchants(client, accounts):
    own = bearer(accounts["merchant"]["api_key"])
    nameless = client.get(WHOAMI, headers=own)
    assert (nameless.status_code, nameless.get_json()["message"]) == (400, "stationId is required")
    assert client.get(f"{WHOAMI}?stationId=STATION002", headers=own).get_json()["data"]["stationId"] == "STATION002"
    missing = client.get(f"{WHOAMI}?stationId=STATION009", headers=own)
    assert (missing.status_code, missing.get_json()["error"]) == (404, "STATION_NOT_FOUND")
    other = client.get(f"{WHOAMI}?stationId=STATION001", headers=bearer(accounts["other_merchant"]["api_key"]))
    assert other.status_code == 404  # codes are per merchant: another merchant's STATION001 is not theirs
    bad = client.get(f"{WHOAMI}?stationId=%00", headers=own)
    assert (bad.status_code, bad.get_json()["error"]) == (400, "VALIDATION_ERROR")


def test_it_is_in_the_openapi_document_with_its_answers(client):
    operation = client.get("/api/docs").get_json()["paths"][WHOAMI]["get"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404", "429"}
    assert [p["name"] for p in operation["parameters"]] == ["stationId"]
    assert {"station_key": []} in operation["security"]
