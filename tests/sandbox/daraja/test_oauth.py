"""The Daraja simulator's OAuth over real HTTP: tokens like Daraja's, and its refusals."""

import base64
import random
import re

from portal.models import SandboxToken
from tests.sandbox.support import (
    assert_envelope,
    basic,
    each,
    merchant_credentials,
)


# -- OAuth -----------------------------------------------------------------------------------
def test_oauth_issues_a_28_character_token_that_lasts_3599_seconds_as_a_string(sim):
    answer = sim.oauth()
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == "3599"  # a string on the wire, as Daraja sends it
    assert re.fullmatch(r"[A-Za-z0-9]{28}", body["access_token"])

    again = sim.oauth().json()["access_token"]
    assert again != body["access_token"]
    for token in (body["access_token"], again):  # both work on the business API
        answer = sim.post(
            "/mpesa/stkpushquery/v1/query", sim.query_body("ws_CO_unknown"), authorization=f"Bearer {token}"
        )
        assert answer.json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"


def test_tokens_do_not_follow_the_random_modules_state(sim):
    """Tokens come from `secrets`: reseeding `random` (as hypothesis does in this very process)
    once made two equal tokens, and the second request failed on the unique index with a 500."""
    tokens = []
    for _ in range(2):
        random.seed(7)
        answer = sim.oauth()
        assert answer.status_code == 200
        tokens.append(answer.json()["access_token"])
    assert tokens[0] != tokens[1]


def test_oauth_with_a_wrong_grant_type_is_refused(sim):
    each(
        [None, "", "password", "CLIENT_CREDENTIALS"],
        lambda grant_type: assert_envelope(
            sim.oauth(grant_type=grant_type), 400, "400.008.02", "Invalid grant type passed"
        ),
    )


def test_oauth_with_missing_or_bad_basic_credentials_is_refused(app, accounts, sim):
    _key, other_secret = merchant_credentials(app, accounts, "other_merchant")
    cases = {
        "no header": None,
        "empty header": "",
        "bearer instead of basic": "Bearer abc",
        "basic without credentials": "Basic",
        "basic garbage": "Basic garbage",
        "basic punctuation": "Basic !!!!",
        "basic latin-1 byte": "Basic é",
        "not utf-8": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "no colon": "Basic " + base64.b64encode(b"no-colon-at-all").decode(),
        "wrong secret": basic(sim.key, sim.secret + "x"),
        "unknown key": basic("x" + sim.key, sim.secret),
        "another app's secret": basic(sim.key, other_secret),
        "non-ascii secret": basic(sim.key, "sécret"),
    }
    each(
        list(cases),
        lambda name: assert_envelope(sim.oauth(cases[name]), 400, "400.008.01", "Invalid Authentication passed"),
    )
    with app.app_context():
        assert SandboxToken.query.count() == 0  # no refused request got a token
