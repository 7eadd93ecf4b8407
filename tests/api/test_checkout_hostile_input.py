"""What an adversarial probe sent the checkout API: each is a 400 in the document's format
(shared/seeds/000) naming the field, and the answer itself is valid JSON."""

import json

import pytest

from portal.models import IdempotencyRecord, Payment

GOOD = '"phone": "254708374149", "amount": 100'


@pytest.fixture
def key_client(client, accounts):
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {accounts['merchant']['api_key']}"
    return client


def refused(answer) -> dict:
    assert answer.status_code == 400, answer.get_data(as_text=True)
    body = json.loads(answer.get_data(as_text=True), parse_constant=lambda c: pytest.fail(f"{c} in our answer"))
    assert body["error"] == "Validation failed"
    for detail in body["details"]:
        assert set(detail) == {"type", "value", "msg", "path", "location"}
    return {d["path"]: d for d in body["details"]}


@pytest.mark.parametrize(
    "raw,field",
    [
        ('{"phone": "254708374149", "amount": Infinity}', "amount"),
        ('{"phone": "254708374149", "amount": -Infinity}', "amount"),
        ('{"phone": "254708374149", "amount": NaN}', "amount"),
        ('{"phone": "254708374149", "amount": 1e309}', "amount"),
        ('{"phone": "254708374149", "amount": [1e309]}', "amount"),
        ('{"phone": "2540711500009", "amount": 100}', "phone"),
        ('{"phone": -254708374149, "amount": 100}', "phone"),
        ('{"phone": 1' + "0" * 4000 + ', "amount": 100}', "phone"),
        ('{"phone": "\\u0000254708374149", "amount": 100}', "phone"),
        ('{"phone": "\\u0662\\u0665\\u0664708374149", "amount": 100}', "phone"),
        ("{" + GOOD + ', "transaction_desc": "Pay\\u0000ment"}', "transaction_desc"),
        ("{" + GOOD + ', "transaction_desc": "Pay\\nment"}', "transaction_desc"),
        ("{" + GOOD + ', "transaction_desc": "Pay\\ud800"}', "transaction_desc"),
        ("{" + GOOD + ', "account_reference": "Order\\u0000"}', "account_reference"),
        ("{" + GOOD + ', "account_reference": "\\udfff"}', "account_reference"),
        ("[" * 30_000 + "]" * 30_000, ""),  # past the recursion limit, within the 64 KiB body limit
        ('{"a":' * 5000 + "1" + "}" * 5000, ""),
        ("\xff{", ""),
    ],
)
def test_hostile_bodies_are_refused_naming_the_field(app, key_client, raw, field):
    data = raw.encode("latin-1") if raw.startswith("\xff") else raw.encode()
    found = refused(key_client.post("/initiate_payment", data=data, content_type="application/json"))
    assert field in found, found
    with app.app_context():
        assert Payment.query.count() == 0


@pytest.mark.parametrize(
    "query,field",
    [
        ("limit=%C2%B2", "limit"),
        ("skip=%D9%A3", "skip"),
        ("limit=" + "9" * 5000, "limit"),
        ("status=%00", "status"),
        ("phone=%00", "phone"),
    ],
)
def test_hostile_query_values_are_refused_naming_the_field(key_client, query, field):
    found = refused(key_client.get("/transactions?" + query))
    assert found[field]["location"] == "query"


def test_nul_in_the_path_is_refused_naming_the_parameter(key_client):
    found = refused(key_client.get("/transactions/ws_CO%00x"))
    assert found["checkout_request_id"]["location"] == "params"


def test_an_idempotency_key_with_control_characters_is_refused(app, key_client):
    answer = key_client.post(
        "/initiate_payment", json={"phone": "254708374149", "amount": 100}, headers={"Idempotency-Key": "key\x01one"}
    )
    assert refused(answer)["Idempotency-Key"]["location"] == "headers"
    with app.app_context():
        assert IdempotencyRecord.query.count() == 0
