"""The bookings API's phone check over HTTP: the document's four forms give one number, and
anything else is refused in the document's format, naming what is wrong."""

import pytest

from tests.conftest import Api

VALIDATE = "/api/payments/validate-phone"


@pytest.mark.parametrize("typed", ["0712345678", "+254712345678", "254712345678", "712345678", 712345678])
def test_the_four_documented_forms_give_the_mpesa_form(api, typed):
    answer = api.post(VALIDATE, json={"phone": typed})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True,
        "message": "Phone number is valid",
        "data": {
            "originalPhone": str(typed),
            "formattedPhone": "254712345678",
            "country": "Kenya",
            "provider": "Safaricom MPesa",
        },
    }


def test_safaricom_0110_numbers_are_valid_too(api):
    assert api.post(VALIDATE, json={"phone": "0110123456"}).json()["data"]["formattedPhone"] == "254110123456"


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("0733123456", "Safaricom"),  # Airtel: Kenyan, but not M-Pesa
        ("071234567", "254"),
        ("2540712345678", "12 digits"),
        ("+447912345678", "254"),
        ("07123456７8", "digits only"),  # a full-width digit
        ("0712\x00345678", "digits only"),
        ("", "required"),
    ],
)
def test_anything_else_is_refused_naming_the_problem(api, typed, words):
    answer = api.post(VALIDATE, json={"phone": typed})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["success"], body["error"]) == (False, "INVALID_PHONE")
    assert words in body["message"]


@pytest.mark.parametrize(
    "body", ["{}", '{"phone": null}', '{"phone": ["0712345678"]}', '{"phone": true}', '{"phone": 1e309}']
)
def test_a_missing_or_malformed_field_is_a_validation_error(api, body):
    answer = api.post(VALIDATE, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "VALIDATION_ERROR"
    assert answer.json()["errors"][0]["field"] == "phone"


def test_it_needs_an_api_key(live_server, accounts):
    for key in (None, "mpk_not_a_key", accounts["station"]["key"]):
        answer = Api(live_server, key).post(VALIDATE, json={"phone": "0712345678"})
        assert answer.status_code == 401
        assert answer.json()["error"] == "UNAUTHORIZED"
