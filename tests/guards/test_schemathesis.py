"""Suite-wide schemathesis guard: schemathesis reads GET /api/docs and sends every operation in
it, valid requests and invalid ones, to the live server with the right credential; no answer may
be a 5xx, and every answer must be documented (status, content type) and match its schema. A
bounded, derandomized number of examples per operation keeps it fast and the same every run."""

from base64 import b64encode

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.extensions import db
from portal.models import Merchant
from portal.sandbox.daraja.oauth import issue_token
from tests.helpers import settled

EXAMPLES = 12  # per operation, valid and invalid requests together
SHARDS = 4
CONFORMANCE = [response_schema_conformance, status_code_conformance, content_type_conformance]
# Daraja answers its own refusals (unknown merchant, wrong password, busy subscriber, still
# processing) with HTTP 500 and code 500.001.1001, and the simulator does as Daraja does. Any
# other 5xx from it (500.003.1001 is the simulator crashing) fails the guard.
DARAJA_REFUSAL = "500.001.1001"
STREAM = "text/event-stream"


@pytest.fixture
def headers_for(app, accounts, live_server):
    """The header for each security scheme of the document (Authorization, unless a dict says otherwise)."""
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        basic = (
            "Basic " + b64encode(f"{merchant.daraja_consumer_key}:{merchant.daraja_consumer_secret}".encode()).decode()
        )
        token = issue_token(basic).token
        paystack_key = merchant.paystack_secret_key
        db.session.commit()
    return {
        "api_key": f"Bearer {accounts['merchant']['api_key']}",
        "station_key": f"Bearer {accounts['station']['key']}",
        "daraja_basic": basic,
        "daraja_token": f"Bearer {token}",
        "paystack_secret_key": f"Bearer {paystack_key}",
        "at_api_key": {"apiKey": app.config["SANDBOX_AT_API_KEY"]},  # a header of its own, not Authorization
    }


def _credential(operation, headers_for) -> dict:
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            value = headers_for[scheme]
            return value if isinstance(value, dict) else {"Authorization": value}
    return {}


def _daraja_refusal_only(case, response) -> None:
    """The simulator's not_a_server_error: a 500 is allowed only as Daraja's own refusal."""
    if response.status_code >= 500:
        try:
            code = response.json().get("errorCode")
        except ValueError:
            code = None
        sent = response.request
        assert response.status_code == 500 and code == DARAJA_REFUSAL, (
            f"the simulator failed: {response.status_code} {response.text[:500]}\n"
            f"{sent.method} {sent.url} {dict(sent.headers)!r} {sent.body!r}"
        )


def _streams(operation) -> bool:
    return any(STREAM in answer.get("content", {}) for answer in operation.definition.raw["responses"].values())


def _stream_opens(case, http: requests.Session, base_url: str, credential: dict) -> None:
    """An event stream never ends: its status and content type are checked, its body is not read."""
    sent = case.as_transport_kwargs(base_url=base_url, headers=credential)
    with http.request(**sent, stream=True, timeout=30) as response:
        documented = case.operation.definition.raw["responses"]
        assert response.status_code < 500, f"{response.status_code} from {case.operation.label}"
        assert str(response.status_code) in documented, f"undocumented {response.status_code} {sent}"
        media = response.headers.get("Content-Type", "").split(";")[0]
        assert media in documented[str(response.status_code)].get("content", {media: None}), media


def _probe(operation, base_url: str, http: requests.Session, credential: dict):
    """A hypothesis test of one operation, with valid and invalid requests."""
    checks = CONFORMANCE if "sandbox" in operation.tags else [not_a_server_error, *CONFORMANCE]
    faults = operation.path == "/sandbox/faults"
    streams = _streams(operation)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported as found
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    )
    def probe(case):
        if streams:
            _stream_opens(case, http, base_url, credential)
            return
        try:
            response = case.call(base_url=base_url, session=http, headers=credential, timeout=30)
        finally:
            if faults:  # whatever the switchboard was told, the next operation meets a working simulator
                http.delete(f"{base_url}/sandbox/faults", timeout=30)
        if "sandbox" in operation.tags:
            _daraja_refusal_only(case, response)
        case.validate_response(response, checks=checks, headers=credential)

    return probe


# The live server's threads (retry jitter, the simulator's request ids) use `random` while
# hypothesis draws examples in this process; hypothesis warns about any such use.
# The guard runs in SHARDS shards (every SHARDS-th operation of the document), so that
# pytest-xdist spreads it over its processes.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("shard", range(SHARDS))
def test_schemathesis_finds_no_5xx_and_every_answer_matches_the_document(app, live_server, headers_for, shard):
    schema = schemathesis.openapi.from_dict(requests.get(f"{live_server}/api/docs", timeout=30).json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    operations = operations[shard::SHARDS]
    http = requests.Session()
    failures: list[str] = []
    for operation in operations:
        try:
            _probe(operation, live_server, http, _credential(operation, headers_for))()
        except Exception as exc:  # every operation gets its go before the test fails
            failures.append(f"{operation.label}: {exc}")
    settled(app, scheduled=False)
    assert not failures, "\n\n".join(failures)
