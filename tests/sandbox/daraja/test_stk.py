"""The Daraja simulator's M-Pesa Express over real HTTP: STK push, the callbacks it delivers and the
STK query, checked against the real Daraja's documented shapes (shared/reference/daraja.md)."""

import re
import time
from datetime import datetime, timedelta

from portal.extensions import db
from portal.models import SandboxToken
from portal.providers.daraja import stk_password
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY
from portal.timeutil import EAT, daraja_timestamp, utcnow
from tests.conftest import wait_for
from tests.helpers import sandbox_request, settled
from tests.sandbox.support import (
    ACCEPTED,
    LOCKED,
    MISSING,
    SHORTCODE,
    assert_envelope,
    basic,
    each,
    metadata,
    receipt_prefix,
)


# -- STK push: the acknowledgement and its refusals --------------------------------------------
def test_push_without_a_valid_access_token_is_refused(app, sim):
    cases = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer nonsense",
        "Token",
        basic(sim.key, sim.secret),
        f"bearer {sim.token()}",
        f"Basic {sim.token()}",
    ]
    each(
        cases,
        lambda authorization: assert_envelope(
            sim.post("/mpesa/stkpush/v1/processrequest", sim.push_body(), authorization=authorization),
            404,
            "404.001.03",
            "Invalid Access Token",
        ),
    )

    assert sim.push().status_code == 200  # the token itself is good until it expires
    with app.app_context():
        SandboxToken.query.filter_by(token=sim.token()).update({"expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    assert_envelope(sim.push(phone="254700000001"), 404, "404.001.03", "Invalid Access Token")
    assert_envelope(sim.query("ws_CO_x"), 404, "404.001.03", "Invalid Access Token")


def test_a_valid_push_is_acknowledged_like_daraja(sim):
    answer = sim.push(phone="254712345678")
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    ]
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == body["CustomerMessage"] == ACCEPTED
    # ws_CO_ + DDMMYYYYHHmmss + 3 ms digits + the 9-digit national number
    match = re.fullmatch(r"ws_CO_(\d{14})\d{3}712345678", body["CheckoutRequestID"])
    assert match, body["CheckoutRequestID"]
    stamped = datetime.strptime(match.group(1), "%d%m%Y%H%M%S").replace(tzinfo=EAT)
    assert abs(stamped - datetime.now(EAT)) < timedelta(minutes=1)  # East Africa Time
    assert re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{4,7}", body["MerchantRequestID"])

    other = sim.accepted(phone="254712345679")
    assert other["CheckoutRequestID"] != body["CheckoutRequestID"]
    assert other["MerchantRequestID"] != body["MerchantRequestID"]


def test_push_accepts_the_variants_daraja_accepts(sim):
    cases = [
        {"Amount": "1"},
        {"Amount": 250_000},
        {"Amount": 10.0},
        {"BusinessShortCode": int(SHORTCODE), "PartyB": int(SHORTCODE)},
        {"PartyA": 254700000004, "PhoneNumber": 254700000004},
        {"TransactionType": "CustomerBuyGoodsOnline"},
        {"TransactionDesc": MISSING},  # the only optional field
        {"AccountReference": "A" * 12, "TransactionDesc": "D" * 13},
        {"CallBackURL": "https://example.com/mpesa/callback?ref=1&token=abc"},
    ]

    def check(overrides):
        phone = f"2547000000{cases.index(overrides):02d}"
        answer = sim.push(phone=phone, **overrides)
        assert answer.status_code == 200, answer.text
        assert answer.json()["ResponseCode"] == "0"

    each(cases, check)


INVALID_FIELDS = [
    ("Amount", 0),
    ("Amount", -5),
    ("Amount", 1.5),
    ("Amount", "1.5"),
    ("Amount", "abc"),
    ("Amount", ""),
    ("Amount", None),
    ("Amount", True),
    ("Amount", 250_001),
    ("Amount", "nan"),
    ("Amount", "inf"),
    ("Amount", MISSING),
    ("PhoneNumber", "0708374149"),
    ("PhoneNumber", "+254708374149"),
    ("PhoneNumber", "25470837414"),
    ("PhoneNumber", "2547083741490"),
    ("PhoneNumber", "255708374149"),
    ("PhoneNumber", "254 708374149"),
    ("PhoneNumber", "254708374149\n"),
    ("PhoneNumber", MISSING),
    ("PartyA", "0708374149"),
    ("PartyB", "abc"),
    ("CallBackURL", "https://example.com/mpesa callback"),
    ("CallBackURL", " https://example.com/mpesa/callback"),
    ("CallBackURL", "https://example.com/mpesa/callback\n"),
    ("CallBackURL", "example.com/mpesa/callback"),
    ("CallBackURL", "ftp://example.com/callback"),
    ("CallBackURL", MISSING),
    ("AccountReference", "A" * 13),
    ("AccountReference", ""),
    ("AccountReference", MISSING),
    ("TransactionDesc", "D" * 14),
    ("TransactionType", "CustomerPayBill"),
    ("BusinessShortCode", "abc"),
    ("BusinessShortCode", MISSING),
    ("Timestamp", "2024-01-01 12:00:00"),
    ("Timestamp", "20241301120000"),
    ("Timestamp", "abc"),
    ("Timestamp", "20241112233"),  # 11 digits: not YYYYMMDDHHmmss, even with a Password made from it
    ("Timestamp", MISSING),
    ("Password", ""),
    ("Password", MISSING),
]


def test_each_invalid_field_is_named_in_a_bad_request(sim):
    def check(case):
        field, value = case
        phone = f"25471100{INVALID_FIELDS.index(case):04d}"
        assert_envelope(sim.push(phone=phone, **{field: value}), 400, "400.002.02", f"Bad Request - Invalid {field}")
        # nothing was opened: the same subscriber can be prompted right away
        answer = sim.push(phone=phone)
        assert answer.status_code == 200, f"the follow-up push was refused: {answer.text}"

    each(INVALID_FIELDS, check)


def test_push_for_an_unknown_shortcode_is_merchant_does_not_exist(sim):
    answer = sim.push(BusinessShortCode="600000", PartyB="600000")
    assert_envelope(answer, 500, "500.001.1001", "Merchant does not exist")


def test_push_with_a_wrong_password_is_wrong_credentials(sim):
    timestamp = daraja_timestamp()
    earlier = daraja_timestamp(datetime.now(EAT) - timedelta(seconds=5))
    cases = {
        "password for another timestamp": stk_password(SHORTCODE, PUBLIC_PASSKEY, earlier),
        "password from another passkey": stk_password(SHORTCODE, "0" * 64, timestamp),
        "garbage": "bm90IGEgcGFzc3dvcmQ=",
        "non-ascii": "pässwörd",
    }
    each(
        list(cases),
        lambda name: assert_envelope(
            sim.push(Timestamp=timestamp, Password=cases[name]), 500, "500.001.1001", "Wrong credentials"
        ),
    )
    assert sim.accepted()["ResponseCode"] == "0"  # and no prompt was left open


def test_second_push_to_a_subscriber_with_an_open_prompt_cannot_lock_them(app, sim):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    first = sim.accepted(phone="254711223344")
    answer = sim.push(phone="254711223344", Amount=5)
    assert_envelope(answer, 500, "500.001.1001", LOCKED)
    assert sim.accepted(phone="254711223345")["ResponseCode"] == "0"  # other subscribers are free
    # the refused push did not disturb the open one
    assert_envelope(sim.query(first["CheckoutRequestID"]), 500, "500.001.1001", "The transaction is being processed")


def test_subscriber_can_be_prompted_again_once_the_prompt_is_answered(sim, receiver):
    first = sim.accepted(phone="254711223344", CallBackURL=receiver.url)
    receiver.wait(1, first["CheckoutRequestID"])
    second = sim.accepted(phone="254711223344", CallBackURL=receiver.url)
    assert second["CheckoutRequestID"] != first["CheckoutRequestID"]
    receiver.wait(1, second["CheckoutRequestID"])


def test_a_prompt_whose_time_is_up_is_over_even_when_its_job_runs_late(app, sim, receiver, worker):
    app.config["SANDBOX_CALLBACK_DELAY"] = 0.2
    worker.pause()  # the job that would close the prompt does not run on time
    try:
        first = sim.accepted(phone="254722000111", CallBackURL=receiver.url, Amount=7)
        resolve_at = sandbox_request(app, first["CheckoutRequestID"]).resolve_at
        wait_for(lambda: utcnow() > resolve_at, timeout=5, what="the first prompt's time to be up")
        second = sim.accepted(phone="254722000111", CallBackURL=receiver.url, Amount=8)  # not locked out
        final = sim.query(first["CheckoutRequestID"])
        assert final.status_code == 200, final.text
        assert final.json()["ResultCode"] == "0"
        assert receiver.bodies() == []
    finally:
        worker.resume()
    receiver.wait(1, first["CheckoutRequestID"])
    receiver.wait(1, second["CheckoutRequestID"])
    settled(app)  # every job that could deliver it again has run
    assert len(receiver.bodies(first["CheckoutRequestID"])) == 1  # still delivered, and only once
    [callback] = receiver.bodies(first["CheckoutRequestID"])
    assert callback["Body"]["stkCallback"]["ResultCode"] == 0
    assert metadata(callback["Body"]["stkCallback"])["Amount"]["Value"] == 7.0


# -- callbacks -------------------------------------------------------------------------------
def test_success_callback_is_delivered_in_darajas_shape(app, sim, receiver):
    ack = sim.accepted(phone="254712345678", Amount=150, CallBackURL=receiver.url)
    [body] = receiver.wait(1)
    record = receiver.received[0]
    assert record["path"] == "/mpesa/callback"
    assert record["content_type"].startswith("application/json")

    assert list(body) == ["Body"] and list(body["Body"]) == ["stkCallback"]
    stk = body["Body"]["stkCallback"]
    assert set(stk) == {"MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc", "CallbackMetadata"}
    assert stk["MerchantRequestID"] == ack["MerchantRequestID"]
    assert stk["CheckoutRequestID"] == ack["CheckoutRequestID"]
    assert stk["ResultCode"] == 0 and isinstance(stk["ResultCode"], int)
    assert stk["ResultDesc"] == "The service request is processed successfully."

    items = metadata(stk)
    assert set(items) == {"Amount", "MpesaReceiptNumber", "Balance", "TransactionDate", "PhoneNumber"}
    assert items["Amount"]["Value"] == 150.0 and isinstance(items["Amount"]["Value"], float)
    receipt = items["MpesaReceiptNumber"]["Value"]
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    assert items["Balance"] == {"Name": "Balance"}  # no Value at all
    date = items["TransactionDate"]["Value"]
    assert isinstance(date, int) and re.fullmatch(r"\d{14}", str(date))
    paid_at = datetime.strptime(str(date), "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    assert abs(paid_at - datetime.now(EAT)) < timedelta(minutes=1)  # East Africa Time
    assert receipt.startswith(receipt_prefix(paid_at))
    assert items["PhoneNumber"]["Value"] == 254712345678 and isinstance(items["PhoneNumber"]["Value"], int)

    final = sim.final_query(ack["CheckoutRequestID"])
    assert final["ResultCode"] == "0"
    assert final["ResultDesc"] == stk["ResultDesc"]


def test_callback_never_arrives_before_the_configured_delay(app, sim, receiver):
    app.config["SANDBOX_CALLBACK_DELAY"] = 0.5
    sim.token()
    waited = []
    for i in range(3):
        time.sleep((0.9 - time.time() % 1) % 1)  # pushed late in a wall-clock second
        sent = time.monotonic()
        ack = sim.accepted(phone=f"25471234500{i}", CallBackURL=receiver.url)
        receiver.wait(1, ack["CheckoutRequestID"])
        waited.append(round(receiver.received[-1]["at"] - sent, 2))
    assert min(waited) >= 0.5, f"callbacks came {waited}s after their pushes; the delay is 0.5s"


def test_failure_callbacks_carry_their_result_code_and_no_metadata(sim, receiver):
    cases = {
        "254712341032": (1032, "Request cancelled by user"),
        "254712341037": (1037, "DS timeout user cannot be reached"),
        "254712342001": (2001, "The initiator information is invalid."),
    }
    acks = {phone: sim.accepted(phone=phone, Amount=100, CallBackURL=receiver.url) for phone in cases}
    receiver.wait(len(cases))

    def check(phone):
        ack = acks[phone]
        code, desc = cases[phone]
        assert receiver.bodies(ack["CheckoutRequestID"]) == [
            {
                "Body": {
                    "stkCallback": {
                        "MerchantRequestID": ack["MerchantRequestID"],
                        "CheckoutRequestID": ack["CheckoutRequestID"],
                        "ResultCode": code,
                        "ResultDesc": desc,
                    }
                }
            }
        ]

    each(list(cases), check)


def test_an_amount_above_the_sandbox_balance_fails_with_result_code_1(app, sim, receiver):
    assert app.config["SANDBOX_BALANCE"] == 1000
    cases = [(None, 1000, 0), (None, 1001, 1), (None, 250_000, 1), (50, 50, 0), (50, 51, 1)]
    acks = []
    for i, (balance, amount, _code) in enumerate(cases):
        if balance is not None:
            app.config["SANDBOX_BALANCE"] = balance
        acks.append(sim.accepted(phone=f"2547330000{i:02d}", Amount=amount, CallBackURL=receiver.url))
    receiver.wait(len(cases))

    def check(case):
        ack = acks[cases.index(case)]
        _balance, amount, code = case
        [body] = receiver.bodies(ack["CheckoutRequestID"])
        stk = body["Body"]["stkCallback"]
        assert stk["ResultCode"] == code
        if code == 1:
            assert stk["ResultDesc"] == "The balance is insufficient for the transaction."
            assert "CallbackMetadata" not in stk
        else:
            assert metadata(stk)["Amount"]["Value"] == float(amount)
        assert sim.final_query(ack["CheckoutRequestID"])["ResultCode"] == str(code)

    each(cases, check)


def test_a_phone_ending_9999_pays_but_its_callback_is_lost(app, sim, receiver):
    app.config["SANDBOX_CALLBACK_DELAY"] = 0.3
    ack = sim.accepted(phone="254712349999", CallBackURL=receiver.url)
    control = sim.accepted(phone="254712340000", CallBackURL=receiver.url)
    receiver.wait(1, control["CheckoutRequestID"])
    settled(app)  # the lost prompt's job has run too
    assert receiver.bodies(ack["CheckoutRequestID"]) == []
    final = sim.query(ack["CheckoutRequestID"])
    assert final.status_code == 200
    assert final.json()["ResultCode"] == "0"
    assert final.json()["ResultDesc"] == "The service request is processed successfully."
    assert len(receiver.bodies()) == 1


def test_callback_copies_deliver_identical_duplicates(app, sim, receiver):
    app.config["SANDBOX_CALLBACK_COPIES"] = 3
    sim.accepted(phone="254712345678", Amount=20, CallBackURL=receiver.url)
    bodies = receiver.wait(3)
    settled(app)  # no fourth copy is on its way
    assert len(receiver.bodies()) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["Body"]["stkCallback"]["ResultCode"] == 0


def test_callback_to_an_unreachable_url_does_not_stop_the_prompt_resolving(sim):
    sim.sink = "http://127.0.0.1:9/mpesa/callback"  # nothing listens there
    ack = sim.accepted(phone="254712341032")
    assert sim.final_query(ack["CheckoutRequestID"])["ResultCode"] == "1032"
    assert sim.accepted(phone="254712341032")["ResponseCode"] == "0"


# -- STK query -------------------------------------------------------------------------------
def test_query_while_the_prompt_is_open_is_being_processed(app, sim):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    ack = sim.accepted()
    body = assert_envelope(
        sim.query(ack["CheckoutRequestID"]), 500, "500.001.1001", "The transaction is being processed"
    )
    assert body["requestId"] == ack["CheckoutRequestID"]
    again = sim.query(ack["CheckoutRequestID"])  # still open: asking does not close it
    assert again.status_code == 500
    assert again.json()["errorMessage"] == "The transaction is being processed"


def test_query_after_resolution_answers_in_strings_with_darajas_spelling(sim):
    cases = {
        "254712341032": ("1032", "Request cancelled by user"),
        "254712341037": ("1037", "DS timeout user cannot be reached"),
        "254708374149": ("0", "The service request is processed successfully."),
    }
    acks = {phone: sim.accepted(phone=phone) for phone in cases}

    def check(phone):
        ack = acks[phone]
        code, desc = cases[phone]
        body = sim.final_query(ack["CheckoutRequestID"])
        assert body == {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": ack["MerchantRequestID"],
            "CheckoutRequestID": ack["CheckoutRequestID"],
            "ResultCode": code,
            "ResultDesc": desc,
        }
        assert all(isinstance(value, str) for value in body.values())
        assert sim.query(ack["CheckoutRequestID"]).json() == body  # asking again gives the same answer

    each(list(cases), check)


def test_query_for_an_unknown_checkout_request_is_a_bad_request(sim):
    each(
        ["ws_CO_01012024120000000708374149", "", None, MISSING],
        lambda checkout_id: assert_envelope(
            sim.query(checkout_id, CheckoutRequestID=checkout_id),
            400,
            "400.002.02",
            "Bad Request - Invalid CheckoutRequestID",
        ),
    )


def test_query_checks_the_access_token_and_credentials(app, sim):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    ack = sim.accepted()
    checkout_id = ack["CheckoutRequestID"]
    answer = sim.post("/mpesa/stkpushquery/v1/query", sim.query_body(checkout_id), authorization="Bearer nope")
    assert_envelope(answer, 404, "404.001.03", "Invalid Access Token")
    earlier = daraja_timestamp(datetime.now(EAT) - timedelta(seconds=5))
    wrong = stk_password(SHORTCODE, PUBLIC_PASSKEY, earlier)
    assert_envelope(sim.query(checkout_id, Password=wrong), 500, "500.001.1001", "Wrong credentials")
    assert_envelope(
        sim.query(
            checkout_id,
            BusinessShortCode="600000",
            Password=stk_password("600000", PUBLIC_PASSKEY, earlier),
            Timestamp=earlier,
        ),
        500,
        "500.001.1001",
        "Merchant does not exist",
    )
    assert_envelope(sim.query(checkout_id, Timestamp="yesterday"), 400, "400.002.02", "Bad Request - Invalid Timestamp")
