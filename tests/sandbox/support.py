"""What the simulator tests share: a Daraja integration's view of the simulator (Sim, and Business
for C2B, B2C and Transaction Status), an Africa's Talking one (At), a merchant's callback
endpoint (Receiver) and Daraja's shapes to check answers against."""

import base64
import itertools
import socket
import threading
import time
from datetime import datetime

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal.extensions import db
from portal.models import Merchant
from portal.providers.daraja import security_credential, stk_password
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY
from portal.timeutil import daraja_timestamp
from tests.conftest import wait_for

SHORTCODE = "174379"
C2B_SHORTCODE = "600984"  # a public C2B/B2C test shortcode (reference §9.7)
PHONE = "254708374149"
MISSING = object()  # an override that removes the field from the body
ENVELOPE = {"requestId", "errorCode", "errorMessage"}
ACCEPTED = "Success. Request accepted for processing"
AT_PHONE = "+254711000111"  # a number the Africa's Talking simulator delivers to
LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"


_serial = itertools.count(1)


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


class Sim:
    """Talks to the simulator the way a Daraja integration would, with one merchant's app."""

    def __init__(self, live_server: str, key: str, secret: str):
        self.base = live_server + "/sandbox/daraja"
        self.key, self.secret = key, secret
        self.sink = live_server + "/sandbox-tests/nowhere"
        self._token = None

    def oauth(self, authorization: str | None = MISSING, grant_type="client_credentials") -> requests.Response:
        headers = (
            {}
            if authorization is None
            else {"Authorization": basic(self.key, self.secret) if authorization is MISSING else authorization}
        )
        params = {} if grant_type is None else {"grant_type": grant_type}
        return requests.get(self.base + "/oauth/v1/generate", params=params, headers=headers, timeout=10)

    def token(self) -> str:
        if self._token is None:
            answer = self.oauth()
            assert answer.status_code == 200, answer.text
            self._token = answer.json()["access_token"]
        return self._token

    def post(self, path: str, body=None, authorization=MISSING, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if authorization is MISSING:
            headers["Authorization"] = f"Bearer {self.token()}"
        elif authorization is not None:
            headers["Authorization"] = authorization
        if body is not None:
            kw["json"] = body
        return requests.post(self.base + path, headers=headers, timeout=10, **kw)

    def push_body(self, phone: str = PHONE, **overrides) -> dict:
        timestamp = overrides.get("Timestamp", daraja_timestamp())
        shortcode = overrides.get("BusinessShortCode", SHORTCODE)
        body = {
            "BusinessShortCode": shortcode,
            "Password": stk_password(str(shortcode), PUBLIC_PASSKEY, str(timestamp)),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 1,
            "PartyA": phone,
            "PartyB": SHORTCODE,
            "PhoneNumber": phone,
            "CallBackURL": self.sink,
            "AccountReference": "Order123",
            "TransactionDesc": "Payment",
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not MISSING}

    def push(self, phone: str = PHONE, **overrides) -> requests.Response:
        return self.post("/mpesa/stkpush/v1/processrequest", self.push_body(phone, **overrides))

    def accepted(self, phone: str = PHONE, **overrides) -> dict:
        answer = self.push(phone, **overrides)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def query_body(self, checkout_id, **overrides) -> dict:
        timestamp = overrides.get("Timestamp", daraja_timestamp())
        body = {
            "BusinessShortCode": SHORTCODE,
            "Password": stk_password(SHORTCODE, PUBLIC_PASSKEY, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_id,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not MISSING}

    def query(self, checkout_id, **overrides) -> requests.Response:
        return self.post("/mpesa/stkpushquery/v1/query", self.query_body(checkout_id, **overrides))

    def final_query(self, checkout_id, timeout: float = 10.0) -> dict:
        def answered():
            answer = self.query(checkout_id)
            return answer.json() if answer.status_code == 200 else None

        return wait_for(answered, timeout=timeout, what=f"the query for {checkout_id} to be final")


class Business(Sim):
    """A Daraja integration's view of the simulator's business APIs (C2B, B2C, Transaction
    Status), with the merchant's app and initiator."""

    def __init__(self, live_server: str, key: str, secret: str, initiator: tuple[str, str, str]):
        super().__init__(live_server, key, secret)
        self.initiator, self.password, self.certificate = initiator

    def credential(self, password: str | None = None) -> str:
        return security_credential(self.password if password is None else password, self.certificate)

    @staticmethod
    def _body(defaults: dict, overrides: dict) -> dict:
        body = {**defaults, **overrides}
        return {k: v for k, v in body.items() if v is not MISSING}

    def register_body(self, confirmation: str, validation: str, **overrides) -> dict:
        defaults = {
            "ShortCode": C2B_SHORTCODE,
            "ResponseType": "Completed",
            "ConfirmationURL": confirmation,
            "ValidationURL": validation,
        }
        return self._body(defaults, overrides)

    def register(
        self, confirmation: str, validation: str, version: str = "v2", authorization=MISSING, **overrides
    ) -> requests.Response:
        body = self.register_body(confirmation, validation, **overrides)
        return self.post(f"/mpesa/c2b/{version}/registerurl", body, authorization=authorization)

    def simulate_body(self, **overrides) -> dict:
        defaults = {
            "ShortCode": C2B_SHORTCODE,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 250,
            "Msisdn": PHONE,
            "BillRefNumber": "INV-2231",
        }
        return self._body(defaults, overrides)

    def simulate(self, version: str = "v2", authorization=MISSING, **overrides) -> requests.Response:
        return self.post(f"/mpesa/c2b/{version}/simulate", self.simulate_body(**overrides), authorization=authorization)

    def b2c_body(self, result_url: str, timeout_url: str, **overrides) -> dict:
        defaults = {
            "OriginatorConversationID": f"payout-{next(_serial):06d}",
            "InitiatorName": self.initiator,
            "SecurityCredential": self.credential(),
            "CommandID": "BusinessPayment",
            "Amount": 500,
            "PartyA": C2B_SHORTCODE,
            "PartyB": "254712345678",
            "Remarks": "Refund for order 42",
            "QueueTimeOutURL": timeout_url,
            "ResultURL": result_url,
            "Occassion": "Refund",
        }
        return self._body(defaults, overrides)

    def b2c(
        self, result_url: str, timeout_url: str, version: str = "v3", authorization=MISSING, **overrides
    ) -> requests.Response:
        body = self.b2c_body(result_url, timeout_url, **overrides)
        return self.post(f"/mpesa/b2c/{version}/paymentrequest", body, authorization=authorization)

    def status_body(self, result_url: str, timeout_url: str, **overrides) -> dict:
        defaults = {
            "Initiator": self.initiator,
            "SecurityCredential": self.credential(),
            "CommandID": "TransactionStatusQuery",
            "TransactionID": "",
            "OriginalConversationID": "",
            "PartyA": C2B_SHORTCODE,
            "IdentifierType": "4",
            "ResultURL": result_url,
            "QueueTimeOutURL": timeout_url,
            "Remarks": "Where is my payout?",
            "Occasion": "Reconciliation",
        }
        return self._body(defaults, overrides)

    def status(self, result_url: str, timeout_url: str, authorization=MISSING, **overrides) -> requests.Response:
        body = self.status_body(result_url, timeout_url, **overrides)
        return self.post("/mpesa/transactionstatus/v1/query", body, authorization=authorization)


class At:
    """Posts to the simulator's form endpoint the way AT's SDKs do."""

    def __init__(self, live_server: str, key: str):
        self.base = live_server + "/sandbox/africastalking"
        self.key = key

    def send(self, key=None, headers=None, **fields) -> requests.Response:
        form = {"username": "sandbox", "to": AT_PHONE, "message": "Your code is 123456", "bulkSMSMode": "1", **fields}
        form = {name: value for name, value in form.items() if value is not None}
        sent = {"apiKey": self.key if key is None else key, "Accept": "application/json", **(headers or {})}
        return self.post(data=form, headers=sent)

    def post(self, **kw) -> requests.Response:
        """A request to the send endpoint exactly as given (`data`, `json`, `headers`)."""
        return requests.post(self.base + "/version1/messaging", timeout=10, **kw)

    def messages(self, to: str) -> requests.Response:
        return requests.get(self.base + "/messages", params={"to": to}, timeout=10)

    def kept(self, to: str) -> list[dict]:
        answer = self.messages(to)
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]


class Paystack:
    """Talks to the Paystack simulator the way an integration does: JSON, its secret key as Bearer."""

    def __init__(self, live_server: str, secret_key: str):
        self.base = live_server + "/sandbox/paystack"
        self.key = secret_key

    def _headers(self, key) -> dict:
        key = self.key if key is MISSING else key
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body=None, key=MISSING, headers=None, **kw) -> requests.Response:
        if body is not None:
            kw["json"] = body
        headers = {**self._headers(key), **(headers or {})}
        return requests.post(self.base + path, headers=headers, timeout=10, **kw)

    def get(self, path: str, key=MISSING) -> requests.Response:
        return requests.get(self.base + path, headers=self._headers(key), timeout=10)

    def ok(self, answer: requests.Response, status: int = 200):
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["status"] is True, body
        return body["data"]

    def initialize(self, **overrides) -> dict:
        body = {"email": "customer@example.com", "amount": 150000, **overrides}
        return self.ok(self.post("/transaction/initialize", {k: v for k, v in body.items() if v is not MISSING}))

    def charge(self, phone: str = "+254712345678", amount=10000, **overrides) -> requests.Response:
        body = {
            "email": "customer@example.com",
            "amount": amount,
            "currency": "KES",
            "mobile_money": {"phone": phone, "provider": "mpesa"},
            **overrides,
        }
        return self.post("/charge", {k: v for k, v in body.items() if v is not MISSING})

    def verify(self, reference: str) -> dict:
        return self.ok(self.get(f"/transaction/verify/{reference}"))

    def final(self, reference: str, timeout: float = 15.0) -> dict:
        """The transaction once it has left pending (a charge's prompt answered)."""

        def ended():
            data = self.verify(reference)
            return data if data["status"] != "pending" else None

        return wait_for(ended, timeout=timeout, what=f"transaction {reference} to end")

    def balance(self) -> int:
        [row] = self.ok(self.get("/balance"))
        return row["balance"]


def paystack_keys(app, accounts, label="merchant") -> tuple[str, str]:
    """The secret and public key provisioning gave the merchant."""
    with app.app_context():
        merchant = db.session.get(Merchant, accounts[label]["id"])
        return merchant.paystack_secret_key, merchant.paystack_public_key


def set_paystack_webhook(app, secret_key: str, url: str | None) -> None:
    """What the merchant does on Paystack's dashboard: where its webhooks go."""
    from portal.sandbox.paystack import integrations

    with app.app_context():
        integrations.set_webhook_url(integrations.by_secret_key(secret_key), url)
        db.session.commit()


def merchant_credentials(app, accounts, label="merchant") -> tuple[str, str]:
    with app.app_context():
        merchant = db.session.get(Merchant, accounts[label]["id"])
        return merchant.daraja_consumer_key, merchant.daraja_consumer_secret


def merchant_initiator(app, accounts, label="merchant") -> tuple[str, str, str]:
    """The initiator name, password and certificate provisioning gave the merchant."""
    with app.app_context():
        merchant = db.session.get(Merchant, accounts[label]["id"])
        return merchant.daraja_initiator_name, merchant.daraja_initiator_password, merchant.daraja_certificate


def free_port_url(path: str = "/c2b/validate") -> str:
    """An address nothing listens on (a port that was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}{path}"


def by_key(items: list[dict]) -> dict:
    """ResultParameter / ReferenceItem lists by Key (their order is not part of the contract)."""
    found = {item["Key"]: item for item in items}
    assert len(found) == len(items), f"duplicate keys in {items}"
    return found


class Receiver:
    """A merchant's callback endpoint: a real HTTP server recording what it is sent. It answers
    200, or the statuses queued in `refuse` first (one per request), as a failing endpoint would.
    `answers` and `delays` (by path) set what it answers there and how long it takes to."""

    def __init__(self):
        self.received: list[dict] = []  # {"at": monotonic, "content_type": ..., "body": ..., "path": ...}
        self.refused: list[dict] = []  # the requests answered with a queued failure status
        self.refuse: list[int] = []
        self.answers: dict[str, tuple[int, str]] = {}  # path -> (status, body) answered there
        self.delays: dict[str, float] = {}  # path -> seconds it takes to answer there (a slow endpoint)
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.base}/mpesa/callback"
        # it looks for shutdown() every 20 ms (socketserver's default, 0.5 s, was every test's teardown)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def at(self, path: str) -> str:
        """The address of `path` on this endpoint (C2B URLs must not say "mpesa": Daraja refuses them)."""
        return self.base + path

    def bodies_at(self, path: str) -> list:
        with self._lock:
            return [r["body"] for r in self.received if r["path"] == path]

    def forms_at(self, path: str, count: int = 1, timeout: float = 15.0) -> list[dict]:
        """The form-encoded requests to `path`, once there are `count` of them."""
        wait_for(lambda: len(self.at_path(path)) >= count, timeout=timeout, what=f"{count} form(s) posted to {path}")
        return [r["form"] for r in self.at_path(path)]

    def at_path(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.received if r["path"] == path]

    def wait_at(self, path: str, count: int = 1, timeout: float = 15.0) -> list:
        wait_for(lambda: len(self.bodies_at(path)) >= count, timeout=timeout, what=f"{count} request(s) to {path}")
        return self.bodies_at(path)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()  # before any parsing: signatures are over these bytes
        record = {
            "at": time.monotonic(),
            "raw": raw,
            "content_type": request.content_type,
            "path": request.path,
            "query": request.query_string.decode(),
            "headers": dict(request.headers),
            "body": request.get_json(silent=True),
            "form": request.form.to_dict(),
        }
        if request.path in self.delays:
            time.sleep(self.delays[request.path])  # the slow endpoint under test, not a wait of the test's
        with self._lock:
            if request.path in self.answers:
                status, text = self.answers[request.path]
            else:
                status, text = self.refuse.pop(0) if self.refuse else 200, '{"ResultCode": 0, "ResultDesc": "Accepted"}'
            (self.received if status == 200 else self.refused).append(record)
        answer = Response(text, status=status, content_type="application/json")
        return answer(environ, start_response)

    def bodies(self, checkout_id: str | None = None) -> list[dict]:
        with self._lock:
            bodies = [r["body"] for r in self.received]
        if checkout_id is None:
            return bodies
        return [b for b in bodies if b["Body"]["stkCallback"]["CheckoutRequestID"] == checkout_id]

    def wait(self, count: int = 1, checkout_id: str | None = None, timeout: float = 10.0) -> list[dict]:
        wait_for(
            lambda: len(self.bodies(checkout_id)) >= count,
            timeout=timeout,
            what=f"{count} callback(s) for {checkout_id or 'any prompt'}",
        )
        return self.bodies(checkout_id)


def metadata(stk_callback: dict) -> dict:
    """CallbackMetadata items by Name (the position is not part of the contract)."""
    items = stk_callback["CallbackMetadata"]["Item"]
    by_name = {item["Name"]: item for item in items}
    assert len(by_name) == len(items), f"duplicate item names in {items}"
    return by_name


def assert_envelope(answer: requests.Response, status: int, code: str, message: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    body = answer.json()
    assert set(body) == ENVELOPE
    assert body["errorCode"] == code
    assert body["errorMessage"] == message
    assert isinstance(body["requestId"], str) and body["requestId"]
    return body


def each(cases, check) -> None:
    """Runs `check(case)` for every case and fails once, naming every case that failed."""
    problems = []
    for case in cases:
        try:
            check(case)
        except (AssertionError, requests.RequestException, ValueError) as exc:
            problems.append(f"{case!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    assert not problems, f"{len(problems)} of {len(cases)} cases failed:\n" + "\n".join(problems)


def receipt_prefix(day: datetime) -> str:
    """Year (N=2019), month (A=Jan) and day (1-9, then A=10) letters of a receipt (reference §3.3)."""
    year = chr(ord("N") + day.year - 2019)
    month = chr(ord("A") + day.month - 1)
    return year + month + (str(day.day) if day.day < 10 else chr(ord("A") + day.day - 10))
