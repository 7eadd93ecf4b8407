"""Small factories and readers for tests."""

import json
import os
import re
import time

import requests

from portal.extensions import db
from portal.models import Callback, Payment, PaymentEvent, SandboxStkRequest, Sms


def initiate(api, phone="254708374149", amount=100, **extra):
    return api.post("/initiate_payment", json={"phone": phone, "amount": amount, **extra})


def payment_by_checkout_id(app, checkout_id) -> Payment:
    with app.app_context():
        payment = Payment.query.filter_by(checkout_request_id=checkout_id).one()
        db.session.expunge(payment)
        return payment


def events(app, checkout_id) -> list[tuple]:
    with app.app_context():
        p = Payment.query.filter_by(checkout_request_id=checkout_id).one()
        return [
            (e.from_status, e.to_status, e.source)
            for e in PaymentEvent.query.filter_by(payment_id=p.id).order_by(PaymentEvent.id)
        ]


def callbacks(app, checkout_id) -> list[tuple]:
    with app.app_context():
        return [
            (c.outcome, c.token_valid) for c in Callback.query.filter_by(provider_id=checkout_id).order_by(Callback.id)
        ]


def sandbox_request(app, checkout_id) -> SandboxStkRequest:
    with app.app_context():
        req = SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one()
        db.session.expunge(req)
        return req


def settled(app, scheduled: bool = True, timeout: float = 30.0) -> None:
    """Returns once the in-process worker has run every job enqueued so far (and every job they
    enqueued): the point after which "nothing else happened" may be asserted. With
    scheduled=False, jobs scheduled for later (an open prompt's timeout) are not waited for."""
    app.extensions["background_worker"].wait_until_idle(timeout, scheduled=scheduled)


def stk_payment(merchant_id: int, reference: str, status: str = "processing", **columns) -> Payment:
    """A committed KES 100 STK payment to 254708374149 (a factory: override any column)."""
    defaults = dict(rail="mpesa", kind="stk_push", amount=10000, phone="254708374149", api="checkout", meta={})
    payment = Payment(merchant_id=merchant_id, reference=reference, status=status, **(defaults | columns))
    db.session.add(payment)
    db.session.commit()
    return payment


class Checkout:
    """A customer's browser at the Paystack simulator's hosted checkout: a session (CSRF cookie)
    and the form's token. `post` answers the 303 to the callback URL unfollowed."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        page = self.http.get(url, timeout=10)
        assert page.status_code == 200, page.text
        self.page = page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)  # none once it has ended
        self.token = token and token.group(1)

    def post(self, action: str, **fields) -> requests.Response:
        return self.http.post(
            f"{self.url}/{action}", data={"csrf_token": self.token, **fields}, allow_redirects=False, timeout=10
        )


SMS_TEXT = "Your water code is 482913"


def queue_sms(app, merchant_id: int, to: str = "0711 000 111", key: str = "otp-1-1", message: str = SMS_TEXT) -> int:
    """What a caller of services.sms.queue does: queue in its transaction, then commit (the send
    job goes out then). Returns the SMS's id."""
    from portal.services import sms

    with app.app_context():
        row = sms.queue(merchant_id, to, message, purpose="otp", dedupe_key=key)
        db.session.commit()
        return row.id


def stored_sms(app, sms_id: int) -> Sms:
    with app.app_context():
        row = db.session.get(Sms, sms_id)
        db.session.expunge(row)
        return row


def sms_status(app, sms_id: int) -> str:
    return stored_sms(app, sms_id).status


def worker_env(app, live_server, **settings) -> dict:
    """The environment of a separate `worker.py` on the tests' database, Redis and live server."""
    if not app.config["REDIS_URL"]:
        raise AssertionError("worker.py needs a real Redis: set TEST_REDIS_URL")
    env = dict(
        os.environ,
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        PUBLIC_BASE_URL=live_server,
        LOG_LEVEL="WARNING",
    )
    return env | settings


QUERY_PATH = "/sandbox/daraja/mpesa/stkpushquery"  # the simulator's STK query, for its fault switch


def ask_about(app, payment_id: int) -> None:
    """Enqueues the STK query job for a payment, as the callback inbox and the sweeper do."""
    from portal.services.mpesa.stk import ask_daraja

    with app.app_context():
        ask_daraja(payment_id)
        db.session.commit()


def failed_stk_query(app, api, phone: str = "254712349999", retries: int = 2) -> tuple[int, int]:
    """A real STK query that failed for good: the Daraja simulator answers every query with
    HTTP 500 (its fault switch, left on: the caller switches it off to "fix the cause"), the
    job is tried 1 + `retries` times at once (no waits) and filed. Phone ...9999 pays but its
    callback is lost, so only a query settles the payment. Returns (dead letter id, payment id)."""
    from portal.models import DeadLetter

    app.config.update(
        JOB_RETRIES=retries, JOB_RETRY_BASE=0.0, SANDBOX_FAULT_API_500=10**6, SANDBOX_FAULT_API_PATHS=QUERY_PATH
    )
    checkout_id = initiate(api, phone=phone).json()["data"]["checkout_request_id"]
    payment_id = payment_by_checkout_id(app, checkout_id).id
    ask_about(app, payment_id)
    settled(app)
    with app.app_context():
        (row,) = DeadLetter.query.filter_by(payment_id=payment_id).all()
        return row.id, payment_id


def dead_letter_row(merchant_id: int | None, n: int, **columns):
    """A committed dead letter of an STK query job that could not reach Daraja (a factory:
    override any column). `n` keeps its job and fingerprint apart from the others'."""
    from portal.models import DeadLetter

    defaults = {
        "job_id": f"stk-query-{n}",
        "func": "portal.jobs.query_stk_payment",
        "args": [n],
        "queue": "payments",
        "fingerprint": f"factory-{n}",
        "error_type": "DarajaUnavailable",
        "error": "could not connect to Daraja",
        "attempts": 6,
    }
    row = DeadLetter(merchant_id=merchant_id, **{**defaults, **columns})
    db.session.add(row)
    db.session.commit()
    return row


class EventStream:
    """A Server-Sent Events stream read over real HTTP (requests with stream=True). `frames()`
    yields each frame as a dict of its fields (`data` parsed as JSON; comment lines under
    "comments"); a read that waits longer than the request's read timeout fails the test."""

    def __init__(self, response):
        self.response = response
        self._lines = response.iter_lines(chunk_size=1024, decode_unicode=True)

    def frames(self):
        frame: dict = {}
        for line in self._lines:
            if line == "":
                if frame:
                    yield frame
                frame = {}
            elif line.startswith(":"):
                frame.setdefault("comments", []).append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                frame[name] = json.loads(value) if name == "data" else value
        if frame:
            yield frame

    def events_until(self, done, timeout: float = 30.0) -> list[dict]:
        """The event frames read until done(frame) holds for one (included), within `timeout` s."""
        deadline = time.monotonic() + timeout
        seen = []
        for frame in self.frames():
            if "event" in frame:
                seen.append(frame)
                if done(frame):
                    return seen
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"the stream ended or ran past {timeout}s before the awaited event; got {seen}")

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
