"""The gateway's C2B routes end to end: register the merchant's URLs with the Daraja simulator,
simulate a customer paying, and see the confirmation land in the ledger once, over real HTTP."""

import pytest

from portal.extensions import db
from portal.models import Callback, Merchant, Payment
from tests.conftest import wait_for
from tests.helpers import settled


def register(api, **body):
    return api.post("/api/mpesa/c2b/register", json={"responseType": "Completed", **body})


def c2b_rows(app) -> list[Payment]:
    with app.app_context():
        rows = Payment.query.filter_by(kind="c2b").all()
        db.session.expunge_all()
        return rows


def test_a_simulated_payment_lands_in_the_ledger_once(app, api):
    registered = register(api)
    assert registered.status_code == 200, registered.text
    data = registered.json()["data"]
    assert data["responseType"] == "Completed"
    assert data["validationUrl"].endswith("/hooks/daraja/c2b/validation")  # no token in what we show
    assert "token" not in data["confirmationUrl"]

    paid = api.post("/api/mpesa/c2b/simulate", json={"msisdn": "0708374149", "amount": 250, "billRefNumber": "INV-7"})
    assert paid.status_code == 200, paid.text
    (row,) = wait_for(lambda: c2b_rows(app), what="the C2B confirmation")
    assert (row.status, row.amount, row.account_reference, row.api) == ("completed", 25000, "INV-7", "gateway")
    settled(app)
    assert len(c2b_rows(app)) == 1

    listed = api.get("/api/transactions", params={"type": "C2B"}).json()["data"]
    assert [(t["type"], t["amount"], t["mpesaReceiptNumber"]) for t in listed] == [("C2B", 250, row.receipt)]
    with app.app_context():
        kinds = sorted(c.kind for c in Callback.query)
        assert kinds == ["c2b_confirmation", "c2b_validation"]


def test_copies_of_the_confirmation_make_one_row(app, api):
    app.config["SANDBOX_CALLBACK_COPIES"] = 3
    register(api)
    api.post("/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 100, "billRefNumber": "A1"})
    wait_for(lambda: c2b_rows(app), what="the C2B confirmation")
    settled(app)
    assert len(c2b_rows(app)) == 1
    with app.app_context():
        confirmations = [c.outcome for c in Callback.query.filter_by(kind="c2b_confirmation").order_by(Callback.id)]
    assert confirmations[0] == "applied" and set(confirmations[1:]) == {"duplicate"} and len(confirmations) >= 2


def test_validation_refuses_accounts_the_merchant_does_not_keep(app, api):
    assert register(api, accounts=["INV-1", "INV-2"]).json()["data"]["accounts"] == ["INV-1", "INV-2"]
    api.post("/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 100, "billRefNumber": "NOPE"})
    settled(app)
    assert c2b_rows(app) == []
    with app.app_context():
        (validation,) = Callback.query.filter_by(kind="c2b_validation").all()
        assert validation.outcome == "rejected" and "NOPE" in validation.outcome_detail
    api.post("/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 100, "billRefNumber": "inv-2"})
    wait_for(lambda: c2b_rows(app), what="an accepted account's payment")


def test_registering_again_keeps_the_account_list_unless_given(app, api, accounts):
    register(api, accounts=["X1"])
    assert register(api, responseType="Cancelled").json()["data"]["accounts"] == ["X1"]
    assert register(api, accounts=[]).json()["data"]["accounts"] == []
    with app.app_context():
        settings = db.session.get(Merchant, accounts["merchant"]["id"]).settings["c2b"]
        assert settings["accounts"] == [] and settings["response_type"] == "Completed"


@pytest.mark.parametrize(
    "body,fields",
    [
        ({"responseType": "completed"}, {"responseType"}),
        ({"accounts": "INV-1"}, {"accounts"}),
        ({"accounts": ["x" * 21]}, {"accounts"}),
    ],
)
def test_bad_registrations_name_their_fields(api, body, fields):
    answer = api.post("/api/mpesa/c2b/register", json=body)
    assert answer.status_code == 400
    assert {e["field"].split(".")[0] for e in answer.json()["errors"]} == fields


def test_bad_simulations_name_every_field(api):
    answer = api.post("/api/mpesa/c2b/simulate", json={"msisdn": "12", "amount": 0})
    assert answer.status_code == 400
    assert {e["field"] for e in answer.json()["errors"]} == {"msisdn", "amount", "billRefNumber"}


def test_simulation_is_refused_outside_the_sandbox(app, api):
    app.config["DARAJA_BASE_URL"] = "https://api.safaricom.co.ke"
    answer = api.post("/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 10, "billRefNumber": "A"})
    assert answer.status_code == 403 and answer.json()["error"] == "SANDBOX_ONLY"
