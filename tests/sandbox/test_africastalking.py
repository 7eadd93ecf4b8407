"""The Africa's Talking simulator over real HTTP, as AT's SDKs and our client see it: 201 with
exactly application/json, plain-text 401 and 400, per-recipient codes, the account-level
refusal, the kept messages as JSON, the virtual phone's inbox, and delivery reports posted to
the configured URL after the usual delay."""

import re

import pytest
import requests

from portal.extensions import db
from portal.models import SandboxDelivery, SandboxSms
from tests.conftest import wait_for
from tests.sandbox.support import AT_PHONE as PHONE
from tests.sandbox.support import At

BLACKLISTED = "+254711000406"
FAILS = "+254711000408"
MESSAGE_ID = re.compile(r"ATXid_[0-9a-f]{32}")
REPORTS = "/at/delivery-reports"


@pytest.fixture
def at(app, live_server) -> At:
    return At(live_server, app.config["SANDBOX_AT_API_KEY"])


def recipients(answer: requests.Response) -> list[dict]:
    assert answer.status_code == 201, answer.text
    assert answer.headers["Content-Type"] == "application/json"  # exactly: AT's Python SDK needs it so
    return answer.json()["SMSMessageData"]["Recipients"]


def test_a_send_is_answered_201_in_ats_shape_and_kept(at):
    answer = at.send(**{"from": "DEMO-SHOP"})
    (recipient,) = recipients(answer)
    assert answer.json()["SMSMessageData"]["Message"] == "Sent to 1/1 Total Cost: KES 0.8000"
    assert set(recipient) == {"statusCode", "number", "status", "cost", "messageId"}
    assert (recipient["statusCode"], recipient["status"], recipient["number"]) == (101, "Success", PHONE)
    assert recipient["cost"] == "KES 0.8000" and MESSAGE_ID.fullmatch(recipient["messageId"])
    (kept,) = at.kept(PHONE)
    assert kept["messageId"] == recipient["messageId"] and kept["from"] == "DEMO-SHOP"
    assert (kept["message"], kept["statusCode"], kept["deliveryStatus"]) == ("Your code is 123456", 101, "Success")


def test_recipients_are_comma_separated_and_each_gets_its_own_code(at):
    to = f"{PHONE}, 254711000222,{BLACKLISTED},+2541234,not-a-number"
    found = recipients(at.send(to=to))
    assert [(r["number"], r["statusCode"], r["status"]) for r in found] == [
        (PHONE, 101, "Success"),
        ("+254711000222", 101, "Success"),  # without its plus too, answered in international form
        (BLACKLISTED, 406, "UserInBlacklist"),
        ("+2541234", 403, "InvalidPhoneNumber"),
        ("not-a-number", 403, "InvalidPhoneNumber"),
    ]
    refused = found[2:]
    assert all(r["messageId"] == "None" and r["cost"] == "0" for r in refused)
    assert at.send(to=to).json()["SMSMessageData"]["Message"] == "Sent to 2/5 Total Cost: KES 1.6000"


def test_a_long_message_costs_a_page_per_153_characters(at):
    (recipient,) = recipients(at.send(message="x" * 161))
    assert recipient["cost"] == "KES 1.6000"
    (recipient,) = recipients(at.send(message="é" * 71))  # not GSM: 70 to a page
    assert recipient["cost"] == "KES 1.6000"


def test_nothing_sent_for_an_invalid_number_says_so(at):
    answer = at.send(to="0711000111")  # no country code
    assert answer.json()["SMSMessageData"]["Message"] == "Sent to 0/1 Total Cost: 0"


def test_an_unusable_sender_id_is_refused_for_the_whole_request(at):
    answer = at.send(**{"from": "A-SENDER-ID-TOO-LONG"})
    assert answer.status_code == 201 and answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}
    assert at.kept(PHONE) == []


@pytest.mark.parametrize(
    "key, username",
    [("wrong-key", "sandbox"), ("", "sandbox"), (None, "my-live-app")],  # None: the right key
    ids=["wrong key", "no key", "the sandbox key with a live username"],
)
def test_bad_credentials_are_a_plain_text_401(at, key, username):
    answer = at.send(key=key, username=username)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == "The supplied authentication is invalid"


def test_the_key_header_is_read_whatever_its_case(at):
    answer = at.post(data={"username": "sandbox", "to": PHONE, "message": "hi"}, headers={"APIKEY": at.key})
    assert answer.status_code == 201


@pytest.mark.parametrize("missing", ["username", "to", "message"])
def test_a_missing_field_is_a_plain_text_400_naming_it(at, missing):
    answer = at.send(**{missing: None})
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == f"Request is missing required form field '{missing}'"
    assert at.send(**{missing: ""}).text == f"Request is missing required form field '{missing}'"


def test_a_json_body_is_not_a_form(at):
    answer = at.post(json={"username": "sandbox", "to": PHONE, "message": "hi"}, headers={"apiKey": at.key})
    assert (answer.status_code, answer.text) == (400, "Request is missing required form field 'username'")


def test_the_api_fault_switches_apply(app, at):
    app.config.update(SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_PATHS="/sandbox/africastalking/version1")
    failed = at.send()
    assert failed.status_code == 500 and failed.headers["Content-Type"].startswith("text/plain")
    assert at.messages(PHONE).status_code == 200  # the kept messages are no API call
    assert recipients(at.send())[0]["statusCode"] == 101


def test_kept_messages_are_found_by_either_form_newest_first(at):
    for text in ("first", "second"):
        recipients(at.send(message=text))
    recipients(at.send(to="+254711000999", message="someone else's"))
    assert [m["message"] for m in at.kept(PHONE)] == ["second", "first"]
    assert at.kept(PHONE.removeprefix("+")) == at.kept(PHONE)
    assert at.messages(PHONE).json()["to"] == PHONE


@pytest.mark.parametrize("to", [None, "", "not-a-number", "0" * 40])
def test_kept_messages_need_a_number(at, to):
    answer = requests.get(at.base + "/messages", params={} if to is None else {"to": to}, timeout=10)
    assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/json"
    assert "to" in answer.json()["error"]


def test_the_virtual_phone_shows_what_reached_it(app, client, at):
    recipients(at.send(to=PHONE, message="Your code is 424242"))
    recipients(at.send(to=FAILS, message="Lost on the way 515151"))
    recipients(at.send(to=BLACKLISTED, message="Opted out 616161"))
    assert "Your code is 424242" in client.get(f"/sandbox/phone/{PHONE.removeprefix('+')}").get_data(as_text=True)
    for number, text in ((FAILS, "515151"), (BLACKLISTED, "616161")):
        page = client.get(f"/sandbox/phone/{number.removeprefix('+')}")
        assert page.status_code == 200 and text not in page.get_data(as_text=True)


def test_the_text_is_kept_encrypted(app, at):
    recipients(at.send(message="Your code is 777888"))
    with app.app_context():
        stored = db.session.execute(db.text("SELECT message FROM sandbox_sms")).scalar()
        assert "777888" not in stored
        assert SandboxSms.query.one().message == "Your code is 777888"


def test_no_report_is_posted_without_a_report_url(app, at):
    recipients(at.send())
    with app.app_context():
        assert SandboxDelivery.query.count() == 0


def test_delivery_reports_are_posted_as_at_posts_them(app, at, receiver):
    app.config["SANDBOX_AT_DELIVERY_REPORT_URL"] = receiver.at(REPORTS + "?token=secret")
    delivered = recipients(at.send(to=f"{PHONE},{FAILS},{BLACKLISTED}"))
    forms = receiver.forms_at(REPORTS, count=2)
    by_id = {form["id"]: form for form in forms}
    assert set(by_id) == {delivered[0]["messageId"], delivered[1]["messageId"]}  # none for the refused one
    assert by_id[delivered[0]["messageId"]] == {
        "id": delivered[0]["messageId"],
        "status": "Success",
        "phoneNumber": PHONE,
        "networkCode": "99999",
        "retryCount": "0",
    }
    failed = by_id[delivered[1]["messageId"]]
    assert (failed["status"], failed["failureReason"], failed["phoneNumber"]) == ("Failed", "DeliveryFailure", FAILS)
    requests_seen = receiver.at_path(REPORTS)
    assert all(r["content_type"] == "application/x-www-form-urlencoded" for r in requests_seen)
    assert all(r["query"] == "token=secret" for r in requests_seen)
    with app.app_context():  # kept as evidence with the token hidden
        wait_for(lambda: SandboxDelivery.query.filter_by(status="delivered").count() == 2, what="both recorded")
        assert {d.url.rpartition("?")[2] for d in SandboxDelivery.query} == {"token=redacted"}
