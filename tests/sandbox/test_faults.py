"""The provider-API fault switches over real HTTP, as the app's own Daraja client meets them: HTTP 500
in Daraja's envelope or a bare gateway page, calls that hang past the client's timeout, for the
next N calls or a fraction; and the JSON switchboard at /sandbox/faults that sets them at run time."""

import json
import time

import pytest
import requests
import urllib3

from portal.extensions import db
from portal.models import Merchant, SandboxStkRequest
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services.mpesa import daraja_for
from portal.timeutil import utcnow
from tests.sandbox.support import PHONE, assert_envelope

PUSH = "/sandbox/daraja/mpesa/stkpush"


def client(app, accounts, **kw):
    with app.app_context():
        made = daraja_for(db.session.get(Merchant, accounts["merchant"]["id"]))
    for name, value in kw.items():
        setattr(made, name, value)
    return made


def prompts(app) -> int:
    with app.app_context():
        return SandboxStkRequest.query.count()


def faults(live_server, method="GET", **values) -> requests.Response:
    return requests.request(method, f"{live_server}/sandbox/faults", json=values or None, timeout=10)


def test_a_500_in_darajas_envelope_is_a_daraja_error_for_the_next_call_only(app, accounts, live_server, receiver):
    daraja = client(app, accounts)
    daraja.access_token()  # the token is fetched before the switch: only the push is hit
    assert faults(live_server, "POST", SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_PATHS=PUSH).status_code == 200
    with pytest.raises(DarajaError) as refused:
        daraja.stk_push(PHONE, 10, receiver.url, "Order1", "Goods")
    assert (refused.value.status, refused.value.error_code) == (500, "500.003.1001")
    assert refused.value.error_message == "Internal Server Error"
    assert not refused.value.retryable
    assert prompts(app) == 0  # refused before it took effect
    assert daraja.stk_push(PHONE, 10, receiver.url, "Order1", "Goods").response_code == "0"  # one call only
    assert prompts(app) == 1


def test_a_bare_500_from_the_gateway_is_unavailable_and_may_have_been_sent(app, accounts, receiver):
    app.config.update(SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_500_BARE=True, SANDBOX_FAULT_API_PATHS=PUSH)
    daraja = client(app, accounts)
    with pytest.raises(DarajaUnavailable) as unavailable:
        daraja.stk_push(PHONE, 10, receiver.url, "Order1", "Goods")
    assert unavailable.value.maybe_sent is True
    assert "HTTP 500" in str(unavailable.value)


def test_the_next_n_calls_fail_and_then_the_api_answers_again(app, sim):
    app.config["SANDBOX_FAULT_API_500"] = 2
    answers = [sim.oauth() for _ in range(3)]
    for answer in answers[:2]:
        assert_envelope(answer, 500, "500.003.1001", "Internal Server Error")
    assert answers[2].status_code == 200 and answers[2].json()["access_token"]


def test_a_rate_of_one_fails_every_api_call_and_nothing_else(app, sim, live_server):
    app.config["SANDBOX_FAULT_API_500_RATE"] = 1.0
    for _ in range(3):
        assert_envelope(sim.oauth(), 500, "500.003.1001", "Internal Server Error")
    push = sim.post("/mpesa/stkpush/v1/processrequest", {}, authorization="Bearer whatever")
    assert_envelope(push, 500, "500.003.1001", "Internal Server Error")  # before its own checks
    assert requests.get(f"{live_server}/sandbox/phone/{PHONE}", timeout=10).status_code == 200  # a page for people
    assert faults(live_server).status_code == 200  # and the switchboard stay up
    app.config["SANDBOX_FAULT_API_500_RATE"] = 0.0
    assert sim.oauth().status_code == 200


def test_a_call_that_hangs_past_the_timeout_is_unavailable_and_took_effect(app, accounts, receiver):
    daraja = client(app, accounts, timeout=urllib3.Timeout(connect=1.0, read=1.0))
    daraja.access_token()
    app.config.update(SANDBOX_FAULT_API_TIMEOUT=1, SANDBOX_FAULT_API_HANG=2.0, SANDBOX_FAULT_API_PATHS=PUSH)
    started = time.monotonic()
    with pytest.raises(DarajaUnavailable) as unavailable:
        daraja.stk_push("254712340101", 10, receiver.url, "Order1", "Goods")
    assert unavailable.value.maybe_sent is True
    assert time.monotonic() - started < 1.9  # the client gave up at its own timeout
    # The simulator went on with the push after the hang: its callback comes, though the client never heard.
    [callback] = receiver.wait(1, timeout=15)
    assert callback["Body"]["stkCallback"]["ResultCode"] == 0
    with app.app_context():
        [req] = SandboxStkRequest.query.all()
        assert req.phone == "254712340101" and req.created_at <= utcnow()
    started = time.monotonic()
    assert daraja.stk_push("254712340102", 10, receiver.url, "Order2", "Goods").response_code == "0"
    assert time.monotonic() - started < 1.0  # only the next call hung


# -- the switchboard -------------------------------------------------------------------------------
def test_the_switchboard_lists_every_switch_with_its_meaning_and_default(live_server):
    answer = faults(live_server)
    assert answer.status_code == 200
    listed = answer.json()["switches"]
    assert {
        "SANDBOX_CALLBACK_COPIES",
        "SANDBOX_FAULT_API_500",
        "SANDBOX_FAULT_API_TIMEOUT",
        "SANDBOX_FAULT_CALLBACK_FAILS",
        "SANDBOX_FAULT_REORDER",
    } <= set(listed)
    assert listed["SANDBOX_FAULT_API_500"] == {
        "value": 0,
        "default": 0,
        "overridden": False,
        "meaning": "the next N simulator API calls answer HTTP 500",
    }
    assert all(entry["meaning"] for entry in listed.values())


def test_an_override_wins_over_config_and_clearing_restores_it(app, live_server):
    app.config["SANDBOX_CALLBACK_COPIES"] = 2
    assert faults(live_server).json()["switches"]["SANDBOX_CALLBACK_COPIES"]["value"] == 2
    changed = faults(live_server, "POST", SANDBOX_CALLBACK_COPIES="4").json()["switches"]["SANDBOX_CALLBACK_COPIES"]
    assert (changed["value"], changed["overridden"]) == (4, True)
    cleared = requests.delete(f"{live_server}/sandbox/faults", timeout=10).json()["switches"]
    assert cleared["SANDBOX_CALLBACK_COPIES"] == {**changed, "value": 2, "overridden": False}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"SANDBOX_FAULT_NOPE": 1}, "unknown switch SANDBOX_FAULT_NOPE"),
        ({"SANDBOX_FAULT_API_500": "many"}, "SANDBOX_FAULT_API_500 cannot be 'many'"),
        ({"SANDBOX_FAULT_API_500": -1}, "SANDBOX_FAULT_API_500 cannot be -1"),
        ('{"SANDBOX_FAULT_API_500_RATE": 1e309}', "SANDBOX_FAULT_API_500_RATE cannot be inf"),
        ({"SANDBOX_FAULT_API_500": True}, "SANDBOX_FAULT_API_500 cannot be True"),
        ([1, 2], "the body must be a JSON object of switch names and values"),
    ],
)
def test_the_switchboard_refuses_what_it_cannot_set(live_server, body, message):
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = requests.post(
        f"{live_server}/sandbox/faults", data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert (answer.status_code, answer.json()) == (400, {"error": message})
    assert not any(entry["overridden"] for entry in faults(live_server).json()["switches"].values())
