"""Suite-wide fuzz guard: hypothesis throws arbitrary JSON (non-finite numbers as raw JSON text,
deep nesting, NUL, control characters, lone surrogates), arbitrary bytes, odd headers, odd query
strings and odd path segments at every JSON route in the URL map and asserts no 5xx. Routes are
found by walking the URL map, so a new JSON route is covered (or the guard fails) automatically."""

import json
from typing import NamedTuple
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.models import Merchant
from portal.sandbox.daraja.oauth import issue_token
from tests.helpers import settled

# Blueprints whose routes speak JSON, and the credential each needs. tests/guards/test_openapi.py
# reads this table too: every route of these blueprints must be in the OpenAPI document.
JSON_BLUEPRINTS = {
    "checkout": "api_key",  # the checkout API (Bearer key)
    "gateway": "api_key",  # the gateway API (Bearer key)
    "isp": "isp_client",  # the isp API: a client_id (and a package to buy) in the JSON body
    "water": "api_key",  # the water API (Bearer key: its station routes take an API key too)
    "bookings": "api_key",  # the bookings API (Bearer key; its Paystack webhook is checked by signature)
    "daraja_webhooks": None,  # Daraja's callbacks: anonymous, always acknowledged
    "paystack_webhooks": None,  # Paystack's events: stored, then checked by their signature
    "sandbox_daraja": "daraja_token",  # the Daraja simulator (Bearer token from its OAuth)
    "sandbox_africastalking": "at_key",  # the AT simulator: an apiKey header, username sandbox in a form
    "sandbox_africastalking_outbox": None,  # the SMS the AT simulator kept (sandbox only, no credential)
    "sandbox_paystack": "paystack_key",  # the Paystack simulator (Bearer secret key)
    "sms_webhooks": None,  # Africa's Talking's delivery reports: anonymous, always answered 200
    "sandbox_faults": None,  # the simulators' fault switchboard (sandbox only, no credential)
    "api_docs": None,  # the OpenAPI document (public; its /ui page is HTML, documented as such)
}
# Blueprints that are not JSON (portal pages, the virtual phone, static files): other guards' business.
NOT_JSON = {
    "auth",
    "dashboard",
    "payments",
    "keys",
    "settings",
    "isp_pages",
    "queues",
    "payouts",
    "escrow",
    "stations",
    "sandbox_phone",
    "sandbox_paystack_checkout",  # the Paystack simulator's hosted checkout: a page for the customer
    "kiosk",
    "",
}

DEEP = b"[" * 100_000 + b"]" * 100_000
# Routes known to answer 5xx to a body, each checked to still fail (so it leaves the list once
# fixed) and kept out of the fuzz until then. Empty: keep it that way.
KNOWN_FAILING: dict[str, bytes] = {}

EXAMPLES = 25  # per route: the whole guard stays well under a minute on a busy machine
SHARDS = 4

FIELDS = [
    "phone",
    "amount",
    "account_reference",
    "transaction_desc",
    "Body",
    "stkCallback",
    "CheckoutRequestID",
    "MerchantRequestID",
    "ResultCode",
    "ResultDesc",
    "CallbackMetadata",
    "Item",
    "BusinessShortCode",
    "Password",
    "Timestamp",
    "TransactionType",
    "Amount",
    "PartyA",
    "PartyB",
    "PhoneNumber",
    "CallBackURL",
    "AccountReference",
    "TransactionDesc",
    "phoneNumber",
    "accountReference",
    "transactionDesc",
    "checkoutRequestId",
    "client_id",
    "package_id",
    "phone_number",
    "description",
    "checkout_id",
    "ShortCode",
    "ResponseType",
    "ConfirmationURL",
    "ValidationURL",
    "CommandID",
    "Msisdn",
    "BillRefNumber",
    "OriginatorConversationID",
    "InitiatorName",
    "Initiator",
    "SecurityCredential",
    "Remarks",
    "QueueTimeOutURL",
    "ResultURL",
    "Occassion",
    "Occasion",
    "TransactionID",
    "OriginalConversationID",
    "IdentifierType",
    "username",
    "to",
    "message",
    "from",
    "id",
    "status",
    "failureReason",
    "email",
    "amount",
    "reference",
    "currency",
    "callback_url",
    "metadata",
    "channels",
    "mobile_money",
    "provider",
    "type",
    "name",
    "account_number",
    "bank_code",
    "source",
    "recipient",
    "reason",
    "account_reference",
    "transaction",
    "customer_note",
    "merchant_note",
]
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)  # surrogates and NUL too
TEXT = st.text(ANY_CHAR, max_size=40) | st.sampled_from(
    ["", "\x00", "\ud800", "\udfff", "Order\n1", "²", "٣", "254\x00712345678", "0712345678", "254708374149"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | TEXT, inner, max_size=4),
    max_leaves=12,
)


def _dump(value) -> bytes:
    # allow_nan: NaN and Infinity go out as raw JSON text; ensure_ascii: surrogates as \udxxx escapes
    return json.dumps(value, allow_nan=True, ensure_ascii=True).encode()


RAW = [
    b'{"phone": "254708374149", "amount": Infinity}',
    b'{"phone": "254708374149", "amount": NaN}',
    b'{"phone": "254708374149", "amount": -Infinity}',
    b'{"phone": "254708374149", "amount": 1e309}',
    b'{"amount": 1' + b"0" * 5000 + b"}",
    DEEP,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"phone": "\\u0000", "amount": 100}',
    b'{"transaction_desc": "\\ud800", "phone": "254708374149", "amount": 1}',
    b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws\\u0000CO", "ResultCode": 0}}}',
    b"\xff\xfe\x00{",
    b'{"phone": "2540711500009", "amount": 100}',
    b'{"phone": -254708374149, "amount": 100}',
    b"",
    b"null",
    b'"just a string"',
    b"\x00",
]
RAW_BODIES = st.sampled_from(RAW)
BODIES = (
    st.builds(_dump, st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6))
    | st.builds(_dump, JSON_VALUES)
    | RAW_BODIES
    | st.binary(max_size=200)
    | st.text(ANY_CHAR, max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
CONTENT_TYPES = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "",
            "application/json; charset=utf-16",
            "*/*",
        ]
    )
    | HEADER_TEXT
)
QUERY = st.dictionaries(
    st.sampled_from(["limit", "skip", "status", "phone", "grant_type", "v", "lastEventId"]) | HEADER_TEXT,
    TEXT | st.sampled_from(["²", "\x00", "1e309", "-1", "9" * 400, "NaN"]),
    max_size=4,
)
SEGMENTS = TEXT | st.sampled_from(["\x00", "ws_CO\x00", "%00", "..", "a" * 500, "ws_CO_0001"])


def _quote(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def json_rules(app):
    rules, unknown = [], []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if blueprint in JSON_BLUEPRINTS:
            rules.append(rule)
        elif blueprint not in NOT_JSON:
            unknown.append(f"{rule.rule} ({rule.endpoint})")
    assert not unknown, f"blueprints the fuzz guard does not know: add them to JSON_BLUEPRINTS or NOT_JSON: {unknown}"
    return rules


class FormCredential(NamedTuple):
    """A credential in headers with fields in a form body (Africa's Talking: apiKey, username)."""

    headers: dict
    fields: dict


class BodyCredential(NamedTuple):
    """A credential carried in a JSON object body (the isp client_id, with a package to buy)."""

    fields: dict  # put over the fuzz's own values
    defaults: dict = {}  # valid values put under them, so the fuzz reaches past their checks too


def _authorised(credential, headers: dict, body: bytes) -> tuple[dict, bytes]:
    """The request with its credential where that kind carries it: a string is the Authorization
    header; a FormCredential adds its headers and puts its fields before the body's own; a
    BodyCredential goes into a body that is a JSON object. Other bodies go as they are: they
    never reach the check."""
    if isinstance(credential, FormCredential):  # the fields first, then the fuzz's bytes as more of the form
        return {**headers, **credential.headers}, urlencode(credential.fields).encode() + b"&" + body
    if isinstance(credential, BodyCredential):
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return headers, body
        if not isinstance(value, dict):
            return headers, body
        return headers, _dump({**credential.defaults, **value, **credential.fields})
    return ({**headers, "Authorization": credential} if credential else headers), body


def test_known_failing_routes_still_exist_and_still_fail(app, credentials):
    rules = {rule.rule: rule for rule in json_rules(app)}
    client = app.test_client()
    for path, body in KNOWN_FAILING.items():
        assert path in rules, f"KNOWN_FAILING lists {path}, which is no longer a JSON route"
        credential = credentials[JSON_BLUEPRINTS[rules[path].endpoint.rpartition(".")[0]]]
        headers, body = _authorised(credential, {"Content-Type": "application/json"}, body)
        answer = client.post(path, data=body, headers=headers)
        assert answer.status_code >= 500, f"{path} no longer fails on {body[:40]!r}: take it out of KNOWN_FAILING"


@pytest.fixture
def credentials(app, accounts, live_server):
    """A valid credential per kind; the live server answers any push the fuzz makes valid."""
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        from base64 import b64encode

        basic = b64encode(f"{merchant.daraja_consumer_key}:{merchant.daraja_consumer_secret}".encode()).decode()
        token = issue_token(f"Basic {basic}").token
        paystack_key = merchant.paystack_secret_key
        db.session.commit()
    isp = BodyCredential(
        {"client_id": accounts["isp"]["client_id"], "package_id": accounts["isp"]["package_id"]},
        {"phone_number": "0712345678", "description": "Fuzz"},
    )
    return {
        "api_key": f"Bearer {accounts['merchant']['api_key']}",
        "daraja_token": f"Bearer {token}",
        "isp_client": isp,
        "at_key": FormCredential({"apiKey": app.config["SANDBOX_AT_API_KEY"]}, {"username": "sandbox"}),
        "paystack_key": f"Bearer {paystack_key}",
        None: None,
    }


def test_the_fuzz_reaches_every_kind_of_json_route(app):
    rules = [rule for rule in json_rules(app) if rule.rule not in KNOWN_FAILING]
    assert len(rules) >= 20  # the checkout API, Daraja webhooks, the simulator (with C2B, B2C, status), faults
    assert sorted(r.rule for r in rules) == sorted(r.rule for shard in range(SHARDS) for r in _shard(rules, shard))


def _shard(rules: list, shard: int) -> list:
    """Every SHARDS-th rule of the URL map's order, from `shard`: the shards together are every rule."""
    return rules[shard::SHARDS]


# The guard in shards, so that pytest-xdist spreads it over its processes; each shard is its own test.
# The app's own use of `random` (retry jitter, request ids) inside a probe is not the strategies'.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_json_route_answers_5xx_to_anything(app, credentials, shard):
    rules = _shard([rule for rule in json_rules(app) if rule.rule not in KNOWN_FAILING], shard)
    client = app.test_client()
    failures: list[str] = []

    for rule in rules:  # first the known nasty bodies, each at every route, authenticated
        credential = credentials[JSON_BLUEPRINTS[rule.endpoint.rpartition(".")[0]]]
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "ws_CO%00" if name != "prompt_id" else "1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for raw in RAW:
                headers, body = _authorised(credential, {"Content-Type": "application/json"}, raw)
                answer = client.open(path + "?limit=%C2%B2&status=%00", method=method, data=body, headers=headers)
                if answer.status_code >= 500:
                    failures.append(f"{answer.status_code} {method} {path} body={body[:200]!r}")
    for rule in rules:
        try:
            _probe(client, rule, credentials[JSON_BLUEPRINTS[rule.endpoint.rpartition(".")[0]]], failures)()
        except AssertionError:
            pass  # collected in `failures`: every route gets its go before the test fails
    settled(app, scheduled=False)
    assert not failures, "\n".join(failures)


def _probe(client, rule, credential, failures):
    """A hypothesis test for one rule; each 5xx is added to `failures`."""
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    if isinstance(credential, BodyCredential):  # the client alone, with its package, and with valid defaults
        client_only = BodyCredential({"client_id": credential.fields["client_id"]})
        credentials = st.sampled_from([client_only, credential._replace(defaults={}), credential])
    else:
        credentials = st.just(credential)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        method=st.sampled_from(methods),
        body=BODIES,
        content_type=CONTENT_TYPES,
        query=QUERY,
        segments=st.fixed_dictionaries({name: SEGMENTS for name in rule.arguments}),
        authorization=credentials | st.none() | HEADER_TEXT,
        idempotency_key=st.none() | HEADER_TEXT | st.sampled_from(["", " ", "k" * 300, "\x00", "ÿ"]),
        last_event_id=st.none() | HEADER_TEXT | st.sampled_from(["0", "-1", "²", "9" * 40, "1e3"]),
    )
    def probe(method, body, content_type, query, segments, authorization, idempotency_key, last_event_id):
        path = rule.rule
        for name, value in segments.items():
            path = path.replace(f"<{name}>", _quote(value))
        headers = {"Content-Type": content_type}
        if authorization is not None:
            headers, body = _authorised(authorization, headers, body)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        qs = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query.items())
        answer = client.open(path + ("?" + qs if qs else ""), method=method, data=body, headers=headers)
        if answer.status_code >= 500:
            failures.append(f"{answer.status_code} {method} {path}?{qs} headers={headers!r} body={body[:200]!r}")
        assert answer.status_code < 500, failures[-1] if failures else ""

    return probe
