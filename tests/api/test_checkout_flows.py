"""The checkout API end to end: live app, Daraja simulator over real HTTP, worker running."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import wait_for
from tests.helpers import callbacks, events, initiate, payment_by_checkout_id, sandbox_request


def settle(api, checkout_id, timeout=15.0):
    def final():
        body = api.get(f"/transactions/{checkout_id}").json()
        return body if body["status"] != "PENDING" else None

    return wait_for(final, timeout=timeout, what=f"{checkout_id} to settle")


def test_successful_payment_settles_with_a_receipt(api):
    answer = initiate(
        api, phone="0708374149", amount=100, account_reference="Order123", transaction_desc="Payment for goods"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["message"] == "Payment initiated successfully"
    data = body["data"]
    assert data["status"] == "PENDING"
    assert data["checkout_request_id"].startswith("ws_CO_")
    assert data["customer_message"] == "Success. Request accepted for processing"

    tx = settle(api, data["checkout_request_id"])
    assert tx["status"] == "SUCCESS"
    assert tx["phone"] == "254708374149"  # 07.. was normalised
    assert tx["amount"] == 100
    assert re.fullmatch(r"[A-Z0-9]{10}", tx["transaction_id"])
    assert re.fullmatch(r"\d{14}", tx["transaction_date"])
    assert tx["result_code"] == 0
    assert tx["customer_message"] == "Success. Your payment has been received."
    assert tx["account_reference"] == "Order123"
    assert tx["transaction_desc"] == "Payment for goods"
    assert tx["merchant_request_id"] == data["merchant_request_id"]


@pytest.mark.parametrize(
    "phone,amount,code,desc",
    [
        ("254708374149", 1500, 1, "The balance is insufficient for the transaction."),
        ("254712341032", 100, 1032, "Request cancelled by user"),
        ("254712342001", 100, 2001, "The initiator information is invalid."),
        ("254712341037", 100, 1037, "DS timeout user cannot be reached"),
    ],
)
def test_unsuccessful_payments_settle_as_failed(app, api, phone, amount, code, desc):
    checkout_id = initiate(api, phone=phone, amount=amount).json()["data"]["checkout_request_id"]
    tx = settle(api, checkout_id)
    assert tx["status"] == "FAILED"
    assert tx["result_code"] == code
    assert tx["result_desc"] == desc
    assert tx["transaction_id"] is None
    internal = {1: "failed", 1032: "cancelled", 2001: "failed", 1037: "timeout"}[code]
    assert payment_by_checkout_id(app, checkout_id).status == internal
    assert events(app, checkout_id)[-1] == ("processing", internal, "callback")


def test_lost_callback_settles_through_the_sweeper(app, api):
    app.config.update(SWEEP_INTERVAL=0.5, SWEEP_QUERY_AFTER=0.5, SWEEP_QUERY_EVERY=0.5)
    checkout_id = initiate(api, phone="254712349999").json()["data"]["checkout_request_id"]
    tx = settle(api, checkout_id, timeout=20)
    assert tx["status"] == "SUCCESS"
    assert callbacks(app, checkout_id) == []  # no callback ever came
    assert events(app, checkout_id)[-1] == ("processing", "completed", "query")


def test_sweeper_leaves_a_payment_alone_while_the_prompt_is_open(app, api):
    app.config.update(SANDBOX_CALLBACK_DELAY=30, SWEEP_INTERVAL=0.3, SWEEP_QUERY_AFTER=0.2, SWEEP_QUERY_EVERY=0.2)
    checkout_id = initiate(api).json()["data"]["checkout_request_id"]
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).last_queried_at, what="a query")
    assert api.get(f"/transactions/{checkout_id}").json()["status"] == "PENDING"


def forged_success(checkout_id, amount=100.0, phone=254712341032):
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "1-1-1",
                "CheckoutRequestID": checkout_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": amount},
                        {"Name": "MpesaReceiptNumber", "Value": "QK12345678"},
                        {"Name": "TransactionDate", "Value": 20231201120000},
                        {"Name": "PhoneNumber", "Value": phone},
                    ]
                },
            }
        }
    }


def test_forged_success_for_a_cancelled_payment_never_shows_success(app, api, live_server):
    checkout_id = initiate(api, phone="254712341032").json()["data"]["checkout_request_id"]
    assert settle(api, checkout_id)["status"] == "FAILED"
    req = sandbox_request(app, checkout_id)
    forged_url = re.sub(r"token=[0-9a-f]+", "token=" + "0" * 40, req.callback_url)
    for url in (f"{live_server}/callback", forged_url, f"{live_server}/api/mpesa/callback/stk"):
        answer = requests.post(url, json=forged_success(checkout_id), timeout=10)
        assert answer.status_code == 200

    # each forgery is stored, refused as sent, and made us ask Daraja, which says 1032
    wait_for(lambda: len(callbacks(app, checkout_id)) == 4, what="the forged callbacks")
    assert callbacks(app, checkout_id)[1:] == [("rejected", False)] * 3
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).last_queried_at, what="the STK query")
    tx = api.get(f"/transactions/{checkout_id}").json()
    assert tx["status"] == "FAILED" and tx["transaction_id"] is None
    assert [e[1] for e in events(app, checkout_id)] == ["pending", "processing", "cancelled"]


def test_genuine_callback_with_the_wrong_amount_is_not_applied(app, api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    checkout_id = initiate(api, phone="254712345678", amount=100).json()["data"]["checkout_request_id"]
    req = sandbox_request(app, checkout_id)
    answer = requests.post(req.callback_url, json=forged_success(checkout_id, 10.0, 254712345678), timeout=10)
    assert answer.status_code == 200
    assert callbacks(app, checkout_id) == [("rejected", True)]
    assert api.get(f"/transactions/{checkout_id}").json()["status"] == "PENDING"


def test_two_hundred_concurrent_duplicate_callbacks_apply_once(app, api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60  # we deliver the callback ourselves, 200 times
    checkout_id = initiate(api, phone="254712345678", amount=250).json()["data"]["checkout_request_id"]
    req = sandbox_request(app, checkout_id)
    body = forged_success(checkout_id, 250.0, 254712345678)

    def deliver(_):
        return requests.post(req.callback_url, json=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(deliver, range(200)))
    assert statuses == [200] * 200
    outcomes = [o for o, _valid in callbacks(app, checkout_id)]
    assert len(outcomes) == 200
    assert outcomes.count("applied") == 1
    assert outcomes.count("duplicate") == 199
    assert [e[1] for e in events(app, checkout_id)].count("completed") == 1
    tx = api.get(f"/transactions/{checkout_id}").json()
    assert tx["status"] == "SUCCESS" and tx["transaction_id"] == "QK12345678"


def test_late_success_after_a_timeout_is_applied_and_flagged(app, api):
    checkout_id = initiate(api, phone="254712341037").json()["data"]["checkout_request_id"]
    assert settle(api, checkout_id)["status"] == "FAILED"
    req = sandbox_request(app, checkout_id)
    requests.post(req.callback_url, json=forged_success(checkout_id, 100.0, 254712341037), timeout=10)
    tx = api.get(f"/transactions/{checkout_id}").json()
    assert tx["status"] == "SUCCESS"
    assert events(app, checkout_id)[-1] == ("timeout", "completed", "callback")
    with app.app_context():
        from portal.models import PaymentEvent

        assert "late success" in PaymentEvent.query.order_by(PaymentEvent.id.desc()).first().detail


def test_second_push_while_a_prompt_is_open_is_a_conflict(app, api):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    assert initiate(api, phone="254711223344").status_code == 200
    answer = initiate(api, phone="0711223344", amount=50)
    assert answer.status_code == 409
    assert answer.json()["error"] == "Duplicate transaction"
    assert "prompt open" in answer.json()["details"]


def test_idempotency_key_replays_the_first_answer(app, api):
    headers = {"Idempotency-Key": "order-77"}
    first = api.post("/initiate_payment", json={"phone": "254708374149", "amount": 10}, headers=headers)
    again = api.post("/initiate_payment", json={"phone": "254708374149", "amount": 10}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.get("/transactions").json()["total"] == 1

    other = api.post("/initiate_payment", json={"phone": "254708374149", "amount": 11}, headers=headers)
    assert other.status_code == 422
    assert api.get("/transactions").json()["total"] == 1


def test_the_three_callback_paths_store_and_acknowledge_in_their_dialects(app, live_server):
    from portal.extensions import db
    from portal.models import Callback

    answers = {
        "/callback": {"message": "Callback processed successfully", "status": "RECEIVED"},
        "/api/mpesa/callback/stk": {"ResultCode": 0, "ResultDesc": "Accepted"},
        "/api/payments/mpesa/callback": {"success": True, "message": "Callback processed successfully"},
    }
    for path, expected in answers.items():
        for body in (
            b"not json",
            b'{"Body": {}}',
            b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_x","ResultCode":0}}}',
        ):
            answer = requests.post(live_server + path, data=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 200
            assert answer.json() == expected
    with app.app_context():
        stored = [(c.path, c.outcome, c.body) for c in db.session.query(Callback).order_by(Callback.id)]
    assert len(stored) == 9
    assert [o for _p, o, _b in stored] == ["invalid", "invalid", "orphan"] * 3
    assert stored[0][2] == "not json"
