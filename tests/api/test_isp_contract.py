"""The isp document's contract (shared/seeds/003) over HTTP: the answers' shapes, every documented
error, the package's price, tenancy by client, provider failures, and {"error"} everywhere under /api/v1."""

import re
import uuid

import pytest

from portal.extensions import db
from portal.models import Merchant
from tests.api.isp_support import PKG_REFERENCE, Storefront, add_client, add_package, payment, payment_count
from tests.conftest import Api
from tests.helpers import initiate

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def refused(answer, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"error": message}


def test_initiate_answers_the_documented_shape_and_charges_the_package_price(app, storefront, accounts):
    answer = storefront.initiate(phone="+254712345678")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["transaction_id", "checkout_id", "message", "status"]
    assert UUID.fullmatch(body["transaction_id"])
    assert body["checkout_id"].startswith("ws_CO_")
    assert body["message"] == "Payment initiated successfully" and body["status"] == "pending"

    row = payment(app, body["checkout_id"])
    assert row.uid == body["transaction_id"] and row.api == "isp"
    assert row.amount == accounts["isp"]["package_price"] * 100  # the package's price, in cents
    assert re.fullmatch(PKG_REFERENCE, row.reference)
    assert row.account_reference == "PKG" + row.reference[-6:]  # what the customer's prompt shows
    assert row.phone == "254712345678" and row.description == "Internet package - Professional Plan"
    assert row.meta["isp_client_id"] == accounts["isp"]["client_id"]
    assert row.meta["package_id"] == accounts["isp"]["package_id"]


def test_the_amount_in_the_request_is_ignored(app, storefront, accounts):
    answer = storefront.initiate(amount=1, price=1)
    assert answer.status_code == 200, answer.text
    assert payment(app, answer.json()["checkout_id"]).amount == accounts["isp"]["package_price"] * 100


@pytest.mark.parametrize("typed", ["+254712345678", "254712345678", "0712345678", "+254 712 345 678", "0712-345-678"])
def test_phones_in_any_typed_kenyan_form_are_answered_as_plus_254(storefront, typed):
    checkout_id = storefront.initiate(phone=typed).json()["checkout_id"]
    status = storefront.status(checkout_id).json()
    assert status["phone_number"] == "+254712345678"


def test_status_answers_the_documented_shape(app, storefront, accounts):
    started = storefront.initiate(phone="0110123456").json()
    body = storefront.status(started["checkout_id"]).json()
    assert list(body) == ["transaction_id", "checkout_id", "status", "amount", "reference", "phone_number"]
    assert body["transaction_id"] == started["transaction_id"]
    assert body["checkout_id"] == started["checkout_id"]
    assert body["status"] in ("pending", "completed")
    assert body["amount"] == accounts["isp"]["package_price"] and isinstance(body["amount"], int)
    assert re.fullmatch(PKG_REFERENCE, body["reference"])
    assert body["phone_number"] == "+254110123456"


@pytest.mark.parametrize(
    "fields,missing",
    [
        ({}, "client_id, package_id, phone_number, description"),
        ({"client_id": None, "description": "x"}, "client_id, package_id, phone_number"),
        ({"phone_number": "0712345678"}, "client_id, package_id, description"),  # the document's own example
        ({"package_id": "", "phone_number": "   "}, "client_id, package_id, phone_number, description"),
    ],
)
def test_initiate_names_exactly_the_missing_fields_in_the_documents_order(storefront, fields, missing):
    answer = storefront.api.post("/api/v1/payments/initiate", json=fields)
    refused(answer, 400, f"Missing required fields: {missing}")


def test_the_documents_postman_example_without_a_phone_is_told_what_is_missing(storefront):
    body = {"client_id": storefront.client_id, "package_id": storefront.package_id, "description": "Test Payment"}
    refused(storefront.api.post("/api/v1/payments/initiate", json=body), 400, "Missing required fields: phone_number")


@pytest.mark.parametrize(
    "fields,missing", [({}, "client_id, checkout_id"), ({"client_id": str(uuid.uuid4())}, "checkout_id")]
)
def test_status_names_exactly_the_missing_fields(storefront, fields, missing):
    refused(storefront.api.post("/api/v1/payments/status", json=fields), 400, f"Missing required fields: {missing}")


@pytest.mark.parametrize(
    "client_id", ["not-a-uuid", 42, "550e8400e29b41d4a716446655440000", "{550e8400-e29b-41d4-a716-446655440000}", []]
)
def test_a_malformed_client_id_is_refused_on_both_routes(app, storefront, client_id):
    refused(storefront.initiate(client_id=client_id), 400, "Invalid client_id format")
    refused(storefront.status("ws_CO_1", client_id=client_id), 400, "Invalid client_id format")
    assert payment_count(app) == 0


def test_unknown_and_inactive_clients_are_forbidden_on_both_routes(app, storefront, accounts):
    checkout_id = storefront.initiate().json()["checkout_id"]
    for client_id in (str(uuid.uuid4()), accounts["isp"]["inactive_client_id"]):
        refused(storefront.initiate(client_id=client_id), 403, "Invalid or inactive client")
        refused(storefront.status(checkout_id, client_id=client_id), 403, "Invalid or inactive client")
    assert payment_count(app) == 1
    upper = storefront.status(checkout_id, client_id=storefront.client_id.upper())
    assert upper.status_code == 200  # a UUID is a UUID in either case


def test_packages_that_cannot_be_bought_are_refused_and_nothing_is_charged(app, storefront, accounts):
    foreign = add_package(app, accounts["other_merchant"]["id"])
    inactive = add_package(app, accounts["merchant"]["id"], active=False)
    refused(storefront.initiate(package_id="pkg-1"), 400, "Invalid package_id format")
    refused(storefront.initiate(package_id=str(uuid.uuid4())), 404, "Package not found")
    refused(storefront.initiate(package_id=foreign), 404, "Package not found")  # like a missing one
    refused(storefront.initiate(package_id=inactive), 400, "Package is inactive")
    assert payment_count(app) == 0


@pytest.mark.parametrize(
    "phone,message",
    [
        ("123", "Invalid phone_number format: phone number must start with 254"),
        ("+254730123456", "Invalid phone_number format: phone number must be a valid Safaricom number (07XX or 01XX)"),
        ("+25471234567x", "Invalid phone_number format: phone number must contain digits only"),
        ("+2540712345678", "Invalid phone_number format: phone number must be 12 digits in the format 254XXXXXXXXX"),
        (True, "Invalid phone_number format: phone number must be a string of digits"),
    ],
)
def test_a_phone_that_cannot_receive_a_prompt_is_refused(app, storefront, phone, message):
    refused(storefront.initiate(phone=phone), 400, message)
    assert payment_count(app) == 0


@pytest.mark.parametrize("description", [42, "Pay\nment", "Pay\u0000ment", "x" * 256, ["Plan"]])
def test_a_description_must_be_one_line_of_text(app, storefront, description):
    refused(
        storefront.initiate(description=description),
        400,
        "Invalid description: text of 1 to 255 characters on one line",
    )
    assert payment_count(app) == 0


@pytest.mark.parametrize("checkout_id", [42, "ws_CO\u00001", "x" * 65, "ws CO 1"])
def test_a_malformed_checkout_id_is_refused(storefront, checkout_id):
    refused(storefront.status(checkout_id), 400, "Invalid checkout_id format")


def test_payments_are_found_only_by_the_client_that_made_them(app, storefront, accounts, api):
    checkout_id = storefront.initiate().json()["checkout_id"]
    assert storefront.status(checkout_id).status_code == 200
    refused(storefront.status("ws_CO_00000000000000000000"), 404, "Payment not found")

    sibling = add_client(app, accounts["merchant"]["id"])  # same merchant, another storefront
    refused(storefront.status(checkout_id, client_id=sibling), 404, "Payment not found")
    stranger = add_client(app, accounts["other_merchant"]["id"])  # another merchant's storefront
    refused(storefront.status(checkout_id, client_id=stranger), 404, "Payment not found")
    # the merchant's checkout-API payments are not any storefront's
    checkout_payment = initiate(api, phone="254708374149").json()["data"]["checkout_request_id"]
    refused(storefront.status(checkout_payment), 404, "Payment not found")


def test_a_second_prompt_to_a_busy_phone_is_a_conflict_not_a_server_error(app, storefront):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60  # the first prompt stays open
    assert storefront.initiate(phone="0712345001").status_code == 200
    answer = storefront.initiate(phone="0712345001")
    refused(
        answer,
        409,
        "failed to initiate STK push: the customer already has a payment prompt open; try again in a minute",
    )


def test_a_provider_failure_answers_the_documents_500(app, storefront):
    app.config.update(SANDBOX_FAULT_API_500=5, SANDBOX_FAULT_API_PATHS="/sandbox/daraja/mpesa/stkpush")
    answer = storefront.initiate()
    assert answer.status_code == 500
    assert answer.json()["error"].startswith("failed to initiate STK push: ")
    assert list(answer.json()) == ["error"]


def test_a_merchant_without_mpesa_credentials_answers_the_documents_500(app, storefront, accounts):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        merchant.daraja_passkey = None
        db.session.commit()
    answer = storefront.initiate()
    refused(answer, 500, "failed to initiate STK push: M-Pesa credentials are not set up for this merchant")


@pytest.mark.parametrize(
    "method,path,status,message",
    [
        ("get", "/api/v1/payments/initiate", 405, "Method Not Allowed"),
        ("put", "/api/v1/payments/status", 405, "Method Not Allowed"),
        ("post", "/api/v1/payments/nothing", 404, "Not Found"),
        ("get", "/api/v1", 404, "Not Found"),
    ],
)
def test_every_error_under_api_v1_is_in_the_documents_format(storefront, method, path, status, message):
    answer = getattr(storefront.api.http, method)(storefront.api.base + path, json={}, timeout=30)
    refused(answer, status, message)


def test_bodies_that_are_not_json_objects_are_refused_in_the_documents_format(storefront):
    for data in (b"", b"null", b"[1]", b'"text"', b"\xff{", b"{", b'{"client_id": NaN}', b"[" * 30_000 + b"]" * 30_000):
        for path in ("/api/v1/payments/initiate", "/api/v1/payments/status"):
            answer = storefront.api.post(path, data=data, headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (path, data[:20], answer.text)
            assert answer.json()["error"].startswith("Invalid request body: ")
    huge = storefront.api.post("/api/v1/payments/initiate", data=b"{" + b" " * 70_000 + b"}")
    refused(huge, 413, "Request Entity Too Large")


def test_a_storefront_may_send_its_json_as_text_plain(storefront):
    """Browsers send text/plain without a CORS preflight; the body is the same JSON."""
    body = (
        f'{{"client_id": "{storefront.client_id}", "package_id": "{storefront.package_id}", '
        '"phone_number": "0712345678", "description": "Daily"}'
    )
    answer = storefront.api.post("/api/v1/payments/initiate", data=body, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200, answer.text


def test_the_other_storefront_of_the_other_merchant_pays_its_own_merchant(app, live_server, accounts):
    client_id = add_client(app, accounts["other_merchant"]["id"], name="Other hotspot")
    package_id = add_package(app, accounts["other_merchant"]["id"], price_kes=20)
    other = Storefront(Api(live_server, None), client_id, package_id)
    checkout_id = other.initiate().json()["checkout_id"]
    row = payment(app, checkout_id)
    assert row.merchant_id == accounts["other_merchant"]["id"] and row.amount == 2000


@pytest.mark.parametrize(
    "fields,status,message",
    [
        ({"client_id": "550e8400-e29b-41d4-a716-44665544000\u0000"}, 400, "Invalid client_id format"),
        ({"client_id": "５５０e8400-e29b-41d4-a716-446655440000"}, 400, "Invalid client_id format"),  # fullwidth digits
        ({"client_id": {"$ne": None}}, 400, "Invalid client_id format"),
        ({"client_id": "' OR 1=1 --"}, 400, "Invalid client_id format"),
        ({"package_id": "\ud800"}, 400, "Invalid package_id format"),
        ({"phone_number": "٠٧١٢٣٤٥٦٧٨"}, 400, "Invalid phone_number format: phone number must contain digits only"),
        (
            {"phone_number": 10**400},
            400,
            "Invalid phone_number format: phone number must be 12 digits in the format 254XXXXXXXXX",
        ),
        (
            {"phone_number": [[[[["0712345678"]]]]]},
            400,
            "Invalid phone_number format: phone number must be a string of digits",
        ),
        ({"description": "\ud800"}, 400, "Invalid description: text of 1 to 255 characters on one line"),
        ({"description": 1e308}, 400, "Invalid description: text of 1 to 255 characters on one line"),
    ],
)
def test_hostile_values_are_refused_in_the_documents_format(app, storefront, fields, status, message):
    refused(storefront.initiate(**fields), status, message)
    assert payment_count(app) == 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"client_id": Infinity, "checkout_id": "x"}',
        '{"client_id": "550e8400-e29b-41d4-a716-446655440000", "checkout_id": -Infinity}',
        '{"client_id": "x", "checkout_id": 1e309}',
        '{"checkout_id": 1' + "0" * 5000 + "}",
        '{"a":' * 5000 + "1" + "}" * 5000,
    ],
)
def test_numbers_json_cannot_hold_are_refused(storefront, raw):
    answer = storefront.api.post("/api/v1/payments/status", data=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"].startswith("Invalid request body: ")
