"""The Paystack simulator's API over real HTTP: Paystack's envelopes and shapes, its key check,
its refusals (messages, codes, HTTP statuses), duplicate references, and integrations that
cannot see one another's objects."""

import re

import pytest
import requests

from portal import openapi
from tests.sandbox.support import each

ROUTES = [
    ("POST", "/transaction/initialize"),
    ("GET", "/transaction/verify/abc"),
    ("POST", "/charge"),
    ("GET", "/charge/abc"),
    ("POST", "/transferrecipient"),
    ("POST", "/transfer"),
    ("GET", "/transfer/verify/abc"),
    ("POST", "/refund"),
    ("GET", "/balance"),
]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def refused(answer: requests.Response, status: int, message: str, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["status"] is False and body["message"] == message, body
    if code is not None:
        assert body["code"] == code and body["type"] == "validation_error", body
    return body


def test_initialize_answers_an_authorization_url_and_verify_shows_an_unpaid_checkout(app, paystack):
    data = paystack.initialize(amount=150000, metadata={"booking": "BK-1", "custom_fields": []})
    assert set(data) == {"authorization_url", "access_code", "reference"}
    checkout = f"{app.config['PUBLIC_BASE_URL']}/sandbox/paystack/checkout/{data['access_code']}"
    assert data["authorization_url"] == checkout  # the app's page, whichever process answered the API
    assert re.fullmatch(r"[a-z0-9]{10}", data["reference"]) and re.fullmatch(r"[a-z0-9]{15}", data["access_code"])
    answer = paystack.get(f"/transaction/verify/{data['reference']}")
    assert answer.json()["message"] == "Verification successful"
    tx = paystack.ok(answer)
    assert (tx["status"], tx["amount"], tx["currency"], tx["domain"]) == ("abandoned", 150000, "KES", "test")
    assert tx["metadata"] == {"booking": "BK-1", "custom_fields": []}  # echoed as sent
    assert tx["paid_at"] is tx["paidAt"] is None and tx["authorization"] == {}
    assert ISO.match(tx["created_at"]) and tx["createdAt"] == tx["created_at"] == tx["transaction_date"]
    assert tx["customer"]["email"] == "customer@example.com" and tx["customer"]["customer_code"].startswith("CUS_")
    assert tx["requested_amount"] == 150000 and isinstance(tx["id"], int)


def test_amounts_are_taken_as_numbers_or_numeric_strings_and_metadata_is_echoed_as_sent(paystack):
    as_text = paystack.initialize(amount="20000", reference="ORDER-1.a=b")
    assert as_text["reference"] == "ORDER-1.a=b"
    assert paystack.verify("ORDER-1.a=b")["amount"] == 20000
    assert paystack.verify(as_text["reference"])["metadata"] == ""  # nothing sent: ""
    text = paystack.initialize(metadata="order 7")
    assert paystack.verify(text["reference"])["metadata"] == "order 7"


@pytest.mark.parametrize("key", [None, "", "sk_test_wrong", "pk_test_0123"])
def test_a_missing_or_wrong_key_is_paystacks_401_on_every_route(paystack, accounts, key):
    def check(route):
        method, path = route
        answer = paystack.post(path, {}, key=key) if method == "POST" else paystack.get(path, key=key)
        assert answer.status_code == 401, answer.text
        assert answer.json() == {"status": False, "message": "Invalid key"}

    each(ROUTES, check)


def test_the_public_key_is_not_a_secret_key(app, accounts, paystack):
    from tests.sandbox.support import paystack_keys

    _secret, public = paystack_keys(app, accounts)
    assert public.startswith("pk_test_") and paystack.key.startswith("sk_test_")
    assert paystack.get("/balance", key=public).status_code == 401


@pytest.mark.parametrize(
    "body, message, code",
    [
        ({"amount": 10000}, "Email Address is required", "missing_params"),
        ({"email": "not-an-email", "amount": 10000}, "Invalid Email Address Passed", "invalid_params"),
        ({"email": "a@example.com"}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": 0}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": -500}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": 100.5}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": "1e4"}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": True}, "Invalid Amount Sent", "invalid_amount"),
        ({"email": "a@example.com", "amount": 299}, "Invalid Amount Sent", "invalid_amount"),  # under KES 3
        ({"email": "a@example.com", "amount": 10000, "reference": "has space"}, "Invalid reference", None),
        ({"email": "a@example.com", "amount": 10000, "callback_url": "ftp://x"}, "Invalid callback_url", None),
    ],
)
def test_initialize_refuses_in_paystacks_words(paystack, body, message, code):
    answer = refused(paystack.post("/transaction/initialize", body), 400, message)
    if code:
        assert answer["code"] == code and answer["type"] == "validation_error"
    if code == "missing_params":
        assert answer["meta"] == {"nextStep": "Provide all required params"}


def test_a_currency_the_integration_does_not_take_is_refused(paystack):
    answer = paystack.post("/transaction/initialize", {"email": "a@example.com", "amount": 10000, "currency": "NGN"})
    assert refused(answer, 400, "Currency not supported by merchant") == {
        "status": False,
        "message": "Currency not supported by merchant",
    }


def test_a_body_that_is_not_a_json_object_is_refused_like_an_empty_one(paystack):
    for data in ("not json", "[1, 2]", '"text"', ""):
        answer = paystack.post("/transaction/initialize", data=data, headers={"Content-Type": "application/json"})
        refused(answer, 400, "Email Address is required", "missing_params")


def test_a_reference_is_used_once_by_transactions_and_charges_alike(paystack, other_paystack):
    paystack.initialize(reference="booking-42")
    body = {"email": "a@example.com", "amount": 10000, "reference": "booking-42"}
    again = paystack.post("/transaction/initialize", body)
    body = refused(again, 400, "Duplicate Transaction Reference", "duplicate_reference")
    assert body["meta"]["nextStep"]
    refused(paystack.charge(reference="booking-42"), 400, "Duplicate Transaction Reference", "duplicate_reference")
    assert other_paystack.initialize(reference="booking-42")["reference"] == "booking-42"  # per integration


def test_an_unknown_reference_is_not_found_with_the_configured_status(app, paystack):
    assert paystack.get("/transaction/verify/nope").json() == {
        "status": False,
        "message": "Transaction reference not found",
    }
    assert paystack.get("/transaction/verify/nope").status_code == 400  # what live integrations report
    app.config["SANDBOX_PAYSTACK_NOT_FOUND_STATUS"] = 404  # what the spec says
    assert paystack.get("/transaction/verify/nope").status_code == 404
    refused(paystack.get("/charge/nope"), 400, "Transaction reference is invalid")
    refused(paystack.get("/transfer/verify/nope-nope-nope-nope"), 404, "Transfer not found")


def test_one_integration_cannot_see_or_touch_anothers_objects(paystack, other_paystack):
    tx = paystack.initialize()
    refused(other_paystack.get(f"/transaction/verify/{tx['reference']}"), 400, "Transaction reference not found")
    refused(other_paystack.get(f"/charge/{tx['reference']}"), 400, "Transaction reference is invalid")
    refused(other_paystack.post("/refund", {"transaction": tx["reference"]}), 404, "Transaction not found")
    recipient = paystack.ok(
        paystack.post(
            "/transferrecipient",
            {"type": "mobile_money", "name": "Jane", "account_number": "0712345678", "bank_code": "MPESA"},
        ),
        201,
    )
    refused(
        other_paystack.post("/transfer", {"amount": 10000, "recipient": recipient["recipient_code"]}),
        400,
        "Recipient specified is invalid",
        "invalid_transfer_recipient",
    )
    assert paystack.verify(tx["reference"])["status"] == "abandoned"  # untouched


def test_every_simulator_route_enforces_the_model_the_document_shows(app, paystack):
    """The OpenAPI document's request model of each POST is what validates it: an empty body is
    refused naming the first field that route's documented model requires."""
    doc = openapi.document(app)
    prefix = "/sandbox/paystack"
    routes = {path: ops["post"] for path, ops in doc["paths"].items() if path.startswith(prefix) and "post" in ops}
    assert len(routes) == 5  # initialize, charge, transfer recipient, transfer, refund

    def check(path):
        model = routes[path]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        first = doc["components"]["schemas"][model]["required"][0]
        body = refused(paystack.post(path.removeprefix(prefix), {}), 400, FIRST_MISSING[first])
        assert first in body["message"].lower(), body

    each(sorted(routes), check)


# Paystack's words for each route's first required field, when it is missing.
FIRST_MISSING = {
    "email": "Email Address is required",
    "amount": "Invalid Amount Sent",
    "type": "Recipient type is required",
    "transaction": "Transaction reference or id is required",
}


def test_errors_outside_the_routes_are_in_paystacks_body(paystack):
    answer = paystack.get("/no/such/path")
    assert answer.status_code == 404 and answer.json()["status"] is False
    wrong = requests.delete(paystack.base + "/transaction/initialize", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["status"] is False


def test_a_body_over_the_size_limit_is_413_in_paystacks_body(app, paystack):
    answer = paystack.post("/transaction/initialize", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    assert answer.status_code == 413 and answer.json()["status"] is False


def test_references_no_object_can_have_are_not_found(paystack):
    for reference in ("ws_CO%00", "%FF%FE", "a" * 300, "a%20b"):
        refused(paystack.get(f"/transaction/verify/{reference}"), 400, "Transaction reference not found")
        refused(paystack.get(f"/charge/{reference}"), 400, "Transaction reference is invalid")
        refused(paystack.get(f"/transfer/verify/{reference}"), 404, "Transfer not found")
