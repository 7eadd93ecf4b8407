"""The virtual phone over real HTTP: a page held open makes STK prompts wait for a person, who pays
or cancels them; the checkout API sees the outcome through the simulator's real callbacks."""

import re
from datetime import timedelta

import pytest
import requests

from portal import create_app
from portal.extensions import db
from portal.models import SandboxApp, SandboxSms, SandboxStkRequest
from portal.timeutil import utcnow
from tests.conftest import TEST_CONFIG, wait_for
from tests.helpers import callbacks, initiate, sandbox_request, settled

PHONE = "254708374149"
WRONG_FORMAT = "Wrong PIN format: enter 4 digits"


class Phone:
    """A person at the phone page: a browser session that polls and posts like htmx does."""

    def __init__(self, live_server: str, msisdn: str = PHONE):
        self.url = f"{live_server}/sandbox/phone/{msisdn}"
        self.http = requests.Session()
        self.token = None

    def open(self) -> str:
        page = self.http.get(self.url, timeout=10)
        assert page.status_code == 200
        self.token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
        return page.text

    def screen(self, version: str | None = None) -> requests.Response:
        params = {"v": version} if version else {}
        return self.http.get(self.url + "/screen", params=params, headers={"HX-Request": "true"}, timeout=10)

    def answer(
        self,
        prompt_id: int,
        action: str,
        pin: str | None = None,
        *,
        url: str | None = None,
        htmx: bool = True,
        token: bool = True,
    ) -> requests.Response:
        data = {} if pin is None else {"pin": pin}
        if token:
            data["csrf_token"] = self.token
        headers = {"HX-Request": "true"} if htmx else {}
        return self.http.post(
            f"{url or self.url}/prompts/{prompt_id}/{action}",
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=10,
        )

    def pay(self, prompt_id: int, pin: str = "1234", **kw) -> requests.Response:
        return self.answer(prompt_id, "pay", pin, **kw)

    def cancel(self, prompt_id: int, **kw) -> requests.Response:
        return self.answer(prompt_id, "cancel", **kw)


@pytest.fixture
def phone(live_server) -> Phone:
    return Phone(live_server)


def push(api, phone=PHONE, amount=100, **extra) -> str:
    answer = initiate(api, phone=phone, amount=amount, account_reference="Order123", **extra)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["checkout_request_id"]


def settle(api, checkout_id, timeout=15.0) -> dict:
    def final():
        body = api.get(f"/transactions/{checkout_id}").json()
        return body if body["status"] != "PENDING" else None

    return wait_for(final, timeout=timeout, what=f"{checkout_id} to settle")


def status(api, checkout_id) -> str:
    return api.get(f"/transactions/{checkout_id}").json()["status"]


def text(html: str) -> str:
    """What a person reads: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# -- interactive prompts ---------------------------------------------------------------------
def test_an_attended_number_gets_a_prompt_that_waits_for_the_person(app, api, phone):
    phone.open()
    checkout_id = push(api)
    req = sandbox_request(app, checkout_id)
    assert req.interactive and req.is_open
    assert req.planned_code == 1037  # until the person acts, the prompt is heading for a timeout
    assert req.business_name == "Demo Shop"

    control = push(api, phone="254712340000")  # unattended: answered by the suffix table after the delay
    assert settle(api, control)["status"] == "SUCCESS"  # so the delay has passed for both, and been handled
    settled(app, scheduled=False)
    assert callbacks(app, checkout_id) == []
    assert status(api, checkout_id) == "PENDING"
    screen = text(phone.screen().text)
    assert "Pay KES 100 to DEMO SHOP? Account no. Order123" in screen
    assert "Enter M-PESA PIN" in screen


def test_the_prompt_shows_a_labelled_pin_box_and_both_answers(app, api, phone):
    phone.open()
    checkout_id = push(api, amount=250)
    prompt_id = sandbox_request(app, checkout_id).id
    html = phone.open()
    assert "Pay KES 250 to DEMO SHOP?" in text(html)
    pin = re.search(r"<input[^>]*name=\"pin\"[^>]*>", html).group(0)
    assert 'type="password"' in pin and 'inputmode="numeric"' in pin and 'maxlength="4"' in pin
    assert f'<label for="pin-{prompt_id}">Enter M-PESA PIN</label>' in html
    assert f'id="pin-{prompt_id}"' in pin
    assert f'action="/sandbox/phone/{PHONE}/prompts/{prompt_id}/pay"' in html
    assert f'action="/sandbox/phone/{PHONE}/prompts/{prompt_id}/cancel"' in html
    assert html.count('name="csrf_token"') == 2  # each form works without JavaScript too
    assert re.search(r">\s*OK\s*<", html) and re.search(r">\s*Cancel\s*<", html)


def test_paying_on_the_phone_delivers_one_callback_and_shows_the_receipt(app, api, phone):
    app.config["SANDBOX_PROMPT_TIMEOUT"] = 2  # so the timeout job runs, and must do nothing, within the test
    phone.open()
    checkout_id = push(api)
    prompt_id = sandbox_request(app, checkout_id).id
    answer = phone.pay(prompt_id, "4321")
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<section id="phone-screen"')  # the partial, for htmx to swap

    tx = settle(api, checkout_id, timeout=5)
    assert tx["status"] == "SUCCESS"
    assert tx["result_code"] == 0
    receipt = tx["transaction_id"]
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    assert f"{receipt} Confirmed. Ksh100.00 sent to DEMO SHOP for account Order123" in text(answer.text)
    assert f"{receipt} Confirmed." in text(phone.screen().text)  # and it stays on the screen

    settled(app)  # the prompt's timeout job has run too: it found the prompt answered and its callback sent
    assert callbacks(app, checkout_id) == [("applied", True)]
    req = sandbox_request(app, checkout_id)
    assert (req.result_code, req.receipt, req.callbacks_sent) == (0, receipt, 1)
    assert status(api, checkout_id) == "SUCCESS"


def test_paying_more_than_the_sandbox_balance_fails_with_result_code_1(app, api, phone):
    phone.open()
    checkout_id = push(api, amount=1500)
    answer = phone.pay(sandbox_request(app, checkout_id).id)
    assert "You do not have enough money in your M-PESA account to pay Ksh1,500.00 to DEMO SHOP" in text(answer.text)
    tx = settle(api, checkout_id, timeout=5)
    assert (tx["status"], tx["result_code"]) == ("FAILED", 1)


def test_cancelling_on_the_phone_fails_the_payment_with_1032(app, api, phone):
    phone.open()
    checkout_id = push(api)
    answer = phone.cancel(sandbox_request(app, checkout_id).id)
    assert answer.status_code == 200
    assert "Request cancelled" in text(answer.text)
    tx = settle(api, checkout_id, timeout=5)
    assert (tx["status"], tx["result_code"], tx["transaction_id"]) == ("FAILED", 1032, None)
    assert tx["result_desc"] == "Request cancelled by user"
    assert callbacks(app, checkout_id) == [("applied", True)]


def test_an_interactive_prompt_left_alone_times_out_with_1037(app, api, phone):
    app.config["SANDBOX_PROMPT_TIMEOUT"] = 1
    phone.open()
    checkout_id = push(api)
    assert sandbox_request(app, checkout_id).interactive
    tx = settle(api, checkout_id, timeout=10)
    assert (tx["status"], tx["result_code"]) == ("FAILED", 1037)
    assert tx["result_desc"] == "DS timeout user cannot be reached"
    assert "Request timed out" in text(phone.screen().text)
    assert callbacks(app, checkout_id) == [("applied", True)]


def test_a_plain_form_post_pays_and_comes_back_to_the_phone(app, api, phone):
    phone.open()
    checkout_id = push(api)
    answer = phone.pay(sandbox_request(app, checkout_id).id, htmx=False)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/sandbox/phone/{PHONE}")
    assert settle(api, checkout_id, timeout=5)["status"] == "SUCCESS"
    assert "Confirmed. Ksh100.00 sent to DEMO SHOP" in text(phone.open())


# -- answers that change nothing ---------------------------------------------------------------
@pytest.mark.parametrize("pin", ["", "12", "12345", "abcd", "12a4", " 1234"])
def test_a_badly_formed_pin_reshows_the_prompt_with_422(app, api, phone, pin):
    phone.open()
    checkout_id = push(api)
    prompt_id = sandbox_request(app, checkout_id).id
    answer = phone.pay(prompt_id, pin)
    assert answer.status_code == 422
    assert WRONG_FORMAT in text(answer.text)
    assert "Pay KES 100 to DEMO SHOP?" in text(answer.text)
    assert re.search(r'<input[^>]*aria-invalid="true"', answer.text)

    plain = phone.pay(prompt_id, pin, htmx=False)  # without htmx: the whole page, with the same error
    assert plain.status_code == 422 and "<html" in plain.text and WRONG_FORMAT in plain.text
    settled(app, scheduled=False)  # whatever the refused answers would have started has run
    assert sandbox_request(app, checkout_id).is_open
    assert callbacks(app, checkout_id) == []
    assert status(api, checkout_id) == "PENDING"


def test_another_numbers_prompt_cannot_be_answered_from_this_phone(app, api, phone, live_server):
    phone.open()
    checkout_id = push(api)
    prompt_id = sandbox_request(app, checkout_id).id
    intruder = Phone(live_server, "254711000111")
    intruder.open()
    assert intruder.pay(prompt_id).status_code == 404
    assert intruder.cancel(prompt_id).status_code == 404
    assert "DEMO SHOP" not in intruder.screen().text
    settled(app, scheduled=False)  # whatever the refused answers would have started has run
    assert sandbox_request(app, checkout_id).is_open
    assert callbacks(app, checkout_id) == []


def test_a_closed_prompt_cannot_be_answered_again(app, api, phone):
    phone.open()
    checkout_id = push(api)
    prompt_id = sandbox_request(app, checkout_id).id
    assert phone.pay(prompt_id).status_code == 200
    assert settle(api, checkout_id, timeout=5)["status"] == "SUCCESS"
    receipt = sandbox_request(app, checkout_id).receipt

    for again in (phone.cancel(prompt_id), phone.pay(prompt_id, "0000"), phone.pay(prompt_id, "x")):
        assert again.status_code == 422
        assert "This request is closed" in text(again.text)
    settled(app, scheduled=False)
    req = sandbox_request(app, checkout_id)
    assert (req.result_code, req.receipt, req.callbacks_sent) == (0, receipt, 1)
    assert callbacks(app, checkout_id) == [("applied", True)]


@pytest.mark.parametrize("token", ["missing", "wrong"])
def test_an_answer_without_the_csrf_token_is_refused(app, api, phone, token):
    phone.open()
    checkout_id = push(api)
    prompt_id = sandbox_request(app, checkout_id).id
    if token == "wrong":
        phone.token = "not-the-token"
    for answer in (
        phone.pay(prompt_id, htmx=False, token=token != "missing"),
        phone.cancel(prompt_id, token=token != "missing"),
    ):
        assert answer.status_code >= 300  # refused; the wording and status belong to the app's CSRF handler
        assert "Confirmed" not in answer.text and "Request cancelled" not in answer.text
    settled(app, scheduled=False)  # whatever the refused answers would have started has run
    assert sandbox_request(app, checkout_id).is_open
    assert callbacks(app, checkout_id) == []


# -- numbers nobody is looking at ------------------------------------------------------------
@pytest.mark.parametrize(
    "msisdn,amount,code",
    [
        ("254712341032", 100, 1032),
        ("254712341037", 100, 1037),
        ("254712342001", 100, 2001),
        ("254712345678", 100, 0),
        ("254712345678", 1500, 1),
    ],
)
def test_an_unattended_number_still_follows_the_suffix_table(app, api, live_server, msisdn, amount, code):
    Phone(live_server, "254799999999").open()  # someone at another phone changes nothing here
    checkout_id = push(api, phone=msisdn, amount=amount)
    req = sandbox_request(app, checkout_id)
    assert not req.interactive and req.planned_code == code
    tx = settle(api, checkout_id, timeout=5)
    assert tx["result_code"] == code
    assert tx["status"] == ("SUCCESS" if code == 0 else "FAILED")


def test_a_prompt_pushed_while_nobody_looked_is_shown_but_not_answerable(app, api, live_server):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    checkout_id = push(api, phone="254712341032")
    req = sandbox_request(app, checkout_id)
    assert not req.interactive
    late = Phone(live_server, "254712341032")
    html = late.open()
    assert "Pay KES 100 to DEMO SHOP?" in text(html)
    assert 'name="pin"' not in html
    assert "the sandbox answers it by the number's ending" in text(html)
    answer = late.pay(req.id)
    assert answer.status_code == 422
    assert sandbox_request(app, checkout_id).is_open  # still heading for its planned 1032


# -- the page and its polling ----------------------------------------------------------------
def test_the_page_is_a_handset_that_polls_its_screen_without_the_portal_nav(app, phone):
    html = phone.open()
    assert 'class="handset"' in html
    assert '<section id="phone-screen"' in html
    assert 'hx-trigger="every 1s"' in html
    assert f'hx-get="/sandbox/phone/{PHONE}/screen?v=' in html
    assert "Sign out" not in html and 'aria-label="Main"' not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "No payment requests" in text(html)


def test_the_poll_answers_204_until_the_screen_changes(app, api, phone):
    first = phone.screen()
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/html")
    version = re.search(r"/screen\?v=([0-9a-f]+)", first.text).group(1)
    same = phone.screen(version)
    if same.status_code == 200:  # the clock turned a minute between the two polls
        version = re.search(r"/screen\?v=([0-9a-f]+)", same.text).group(1)
        same = phone.screen(version)
    assert same.status_code == 204 and same.text == ""

    push(api)
    changed = phone.screen(version)
    assert changed.status_code == 200
    assert "Enter M-PESA PIN" in changed.text


def test_each_poll_marks_the_number_attended_for_a_few_seconds(app, phone):
    key = f"sandbox:phone:{PHONE}:attended"
    redis = app.extensions["redis"]
    assert not redis.exists(key)
    phone.screen()
    assert redis.exists(key)
    assert 0 < redis.ttl(key) <= 5


def test_the_inbox_lists_this_numbers_messages_newest_first(app, phone, live_server):
    assert "No messages" in text(phone.open())
    now = utcnow()
    earlier = now - timedelta(minutes=5)
    with app.app_context():
        db.session.add_all(
            [
                SandboxSms(to=PHONE, sender="DEMO-SHOP", message="Your code is 111111", created_at=earlier),
                SandboxSms(to="+" + PHONE, sender="DEMO-SHOP", message="Your code is 222222", created_at=now),
                SandboxSms(to="254711000111", sender="DEMO-SHOP", message="Not for you: 333333", created_at=now),
            ]
        )
        db.session.commit()
    screen = text(phone.open())
    assert "No messages" not in screen
    assert screen.index("222222") < screen.index("111111")
    assert "333333" not in screen
    other = text(Phone(live_server, "254711000111").open())
    assert "333333" in other and "111111" not in other
    assert "No messages" in text(Phone(live_server, "254722000222").open())


def test_the_merchants_sandbox_app_is_named_after_the_merchant(app, accounts):
    with app.app_context():
        assert {a.name for a in SandboxApp.query} == {"Demo Shop", "Other Shop"}


@pytest.mark.parametrize("msisdn", ["12345", "254abc708374", "2547083741490", "255708374149", "25470837414"])
def test_an_invalid_number_is_404(app, api, phone, live_server, msisdn):
    base = f"{live_server}/sandbox/phone/{msisdn}"
    assert requests.get(base, timeout=10).status_code == 404
    assert requests.get(base + "/screen", timeout=10).status_code == 404
    phone.open()
    checkout_id = push(api)
    with app.app_context():
        prompt_id = SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one().id
    assert phone.pay(prompt_id, url=base).status_code == 404
    assert sandbox_request(app, checkout_id).is_open


@pytest.mark.parametrize("typed", ["0708374149", "+254708374149"])
def test_a_local_number_leads_to_the_phones_one_address(live_server, typed):
    answer = requests.get(f"{live_server}/sandbox/phone/{typed}", allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"].endswith(f"/sandbox/phone/{PHONE}")


def test_the_simulators_process_alone_serves_the_virtual_phone(app):
    """sandbox_wsgi.py (the Procfile's `sandbox` process) is create_app(part="sandbox"): its pages
    render with no portal blueprint registered."""
    simulators = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}, part="sandbox"
    )
    answer = simulators.test_client().get("/sandbox/phone/254712345678")
    assert answer.status_code == 200
    assert "<title>Virtual phone 254712345678" in answer.get_data(as_text=True)
    assert "Content-Security-Policy" in answer.headers  # the portal's headers on its pages too
