"""The gateway document's STK routes, transactions and health over real HTTP: live app,
Daraja simulator, worker."""

import pytest

from portal.extensions import db
from portal.models import Payment
from tests.conftest import wait_for
from tests.helpers import events, stk_payment


def push(api, phone="254708374149", amount=100, **extra):
    return api.post("/api/mpesa/stk-push", json={"phoneNumber": phone, "amount": amount, **extra})


def settle(api, ident, timeout=15.0):
    def final():
        tx = api.get(f"/api/transactions/{ident}").json()["data"]
        return tx if tx["status"] not in ("pending", "processing") else None

    return wait_for(final, timeout=timeout, what=f"transaction {ident} to settle")


def test_stk_push_settles_and_is_listed(api):
    answer = push(api, phone="0708374149", amount=100, accountReference="Order123", transactionDesc="Payment")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    tx = body["data"]
    assert tx["type"] == "STK_PUSH" and tx["status"] == "processing"
    assert tx["checkoutRequestId"].startswith("ws_CO_")
    assert tx["phoneNumber"] == "254708374149" and tx["amount"] == 100 and tx["api"] == "gateway"

    done = settle(api, tx["id"])
    assert done["status"] == "completed"
    assert done["mpesaReceiptNumber"] and done["resultCode"] == "0"

    listed = api.get("/api/transactions", params={"type": "STK_PUSH", "status": "completed", "search": "0708374149"})
    assert listed.status_code == 200
    page = listed.json()
    assert [t["id"] for t in page["data"]] == [tx["id"]]
    assert page["pagination"] == {"page": 1, "limit": 20, "total": 1, "totalPages": 1}
    by_receipt = api.get("/api/transactions", params={"search": done["mpesaReceiptNumber"]}).json()
    assert [t["id"] for t in by_receipt["data"]] == [tx["id"]]


def test_validation_names_every_bad_field(api):
    answer = api.post("/api/mpesa/stk-push", json={"phoneNumber": "0800000000", "amount": 10.5, "accountReference": ""})
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False and body["error"] == "VALIDATION_ERROR" and body["message"]
    named = {e["field"]: e["message"] for e in body["errors"]}
    assert set(named) == {"phoneNumber", "amount", "accountReference"}
    assert named["amount"] == "Amount must be a whole number of KES (M-Pesa takes no cents)"

    missing = api.post("/api/mpesa/stk-push", json={}).json()
    assert {e["field"] for e in missing["errors"]} == {"phoneNumber", "amount"}


@pytest.mark.parametrize("amount", [0, 250_001, float("inf"), True, "100"])
def test_amounts_outside_darajas_limits_are_refused(api, amount):
    answer = (
        push(api, amount=amount)
        if amount != float("inf")
        else api.post(
            "/api/mpesa/stk-push",
            data='{"phoneNumber": "254708374149", "amount": Infinity}',
            headers={"Content-Type": "application/json"},
        )
    )
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["amount"]


def test_the_largest_amount_daraja_takes_is_accepted(api):
    assert push(api, amount=250_000).status_code == 200


def test_unauthenticated_requests_are_refused_in_the_envelope(live_server):
    import requests

    answer = requests.post(live_server + "/api/mpesa/stk-push", json={}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["success"] is False and answer.json()["error"] == "UNAUTHORIZED"


def test_stk_query_asks_daraja_and_settles_a_lost_callback(app, api, accounts):
    # 9999: the simulator accepts the push but never calls back
    tx = push(api, phone="254712349999").json()["data"]
    asked = api.post("/api/mpesa/stk-push/query", json={"checkoutRequestId": tx["checkoutRequestId"]})
    assert asked.status_code == 200, asked.text
    answer = asked.json()["data"]

    def answered():
        data = api.post("/api/mpesa/stk-push/query", json={"checkoutRequestId": tx["checkoutRequestId"]}).json()
        return data["data"] if not data["data"]["pending"] else None

    if answer["pending"]:
        answer = wait_for(answered, what="Daraja to have a result")
    assert answer["ResultCode"] == "0"
    assert answer["transaction"]["status"] == "completed"
    assert ("processing", "completed", "query") in events(app, tx["checkoutRequestId"])


def test_stk_query_of_another_merchants_push_is_not_found(api, other_api):
    tx = push(api).json()["data"]
    answer = other_api.post("/api/mpesa/stk-push/query", json={"checkoutRequestId": tx["checkoutRequestId"]})
    assert answer.status_code == 404 and answer.json()["error"] == "NOT_FOUND"


def test_idempotency_key_replays_the_first_answer(app, api):
    headers = {"Idempotency-Key": "order-77"}
    first = api.post("/api/mpesa/stk-push", json={"phoneNumber": "254708374149", "amount": 100}, headers=headers)
    again = api.post("/api/mpesa/stk-push", json={"phoneNumber": "254708374149", "amount": 100}, headers=headers)
    assert again.status_code == first.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = api.post("/api/mpesa/stk-push", json={"phoneNumber": "254708374149", "amount": 200}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    with app.app_context():
        assert Payment.query.filter_by(api="gateway").count() == 1


def test_transactions_are_paged_and_filtered(app, api, accounts):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        for n in range(5):
            stk_payment(merchant_id, f"PAYGW{n}", status="completed" if n % 2 else "failed")
        db.session.remove()
    page = api.get("/api/transactions", params={"page": 2, "limit": 2}).json()
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3}
    assert len(page["data"]) == 2
    failed = api.get("/api/transactions", params={"status": "failed"}).json()
    assert {t["reference"] for t in failed["data"]} == {"PAYGW0", "PAYGW2", "PAYGW4"}
    bad = api.get("/api/transactions", params={"page": "٣", "limit": 1000, "type": "CARD", "status": "SUCCESS"})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"page", "limit", "type", "status"}


def test_another_merchants_transaction_is_not_found(app, api, other_api, accounts):
    with app.app_context():
        ident = stk_payment(accounts["merchant"]["id"], "PAYMINE1").id
    assert api.get(f"/api/transactions/{ident}").status_code == 200
    answer = other_api.get(f"/api/transactions/{ident}")
    assert answer.status_code == 404 and answer.json() == {
        "success": False,
        "message": f"No transaction with id {ident}",
        "error": "NOT_FOUND",
    }
    assert other_api.get("/api/transactions/abc").json()["error"] == "NOT_FOUND"


def test_health_reports_database_and_redis_without_a_key(live_server):
    import requests

    answer = requests.get(live_server + "/api/health", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True
    assert {k: body["data"][k] for k in ("status", "database", "redis")} == {
        "status": "healthy",
        "database": "connected",
        "redis": "connected",
    }


def test_health_is_never_rate_limited(app, live_server):
    import requests

    from portal.extensions import limiter

    app.config["GATEWAY_RATE_LIMIT"] = "2 per minute"
    limiter.enabled = True
    codes = {requests.get(live_server + "/api/health", timeout=10).status_code for _ in range(5)}
    assert codes == {200}


def test_the_gateway_budget_is_enforced_in_the_envelope(app, api):
    from portal.extensions import limiter

    app.config["GATEWAY_RATE_LIMIT"] = "2 per minute"
    limiter.enabled = True
    codes = [api.get("/api/transactions").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = api.get("/api/transactions")
    assert refused.json()["success"] is False and refused.json()["error"] == "RATE_LIMITED"


def test_unknown_paths_and_methods_answer_in_the_envelope(api):
    missing = api.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["success"] is False
    wrong = api.get("/api/mpesa/stk-push")
    assert wrong.status_code == 405 and wrong.json()["error"] == "METHOD_NOT_ALLOWED"
