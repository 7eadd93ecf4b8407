"""The portal's own error pages, with a way back in; the APIs keep their own error formats."""

import pytest
from flask import abort

from portal import create_app, errors, web
from portal.web.errors import render_portal_error
from tests.conftest import TEST_CONFIG


def test_a_missing_page_for_a_signed_in_merchant_leads_back_to_the_dashboard(client, signed_in):
    answer = client.get("/no-such-page")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "Page not found" in page and 'href="/">Back to your dashboard</a>' in page
    assert "Sign out" in page  # the portal's own layout, navigation and all


def test_another_merchants_payment_is_the_same_not_found_page(client, signed_in):
    answer = client.get("/payments/999999")
    assert answer.status_code == 404 and "Back to your dashboard" in answer.get_data(as_text=True)


def test_a_missing_page_without_a_session_offers_sign_in(client):
    page = client.get("/no-such-page").get_data(as_text=True)
    assert "Page not found" in page and 'href="/login">Sign in</a>' in page


def test_a_wrong_method_on_a_portal_page(client, signed_in):
    answer = client.get("/logout")
    assert answer.status_code == 405 and "cannot be used that way" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/transactions/nope/extra", "/api/nothing-here", "/callback/x"])
def test_api_paths_do_not_get_the_portal_page(client, path):
    answer = client.get(path)
    assert answer.status_code in (404, 405) and "Back to your dashboard" not in answer.get_data(as_text=True)
    assert "Sign in</a>" not in answer.get_data(as_text=True)


def test_the_sandbox_keeps_darajas_405_envelope(client):
    answer = client.get("/sandbox/daraja/mpesa/stkpush/v1/processrequest")
    assert answer.status_code == 405 and answer.get_json()["errorCode"] == "405.001"


def test_render_portal_error_takes_a_code_and_optional_words(app):
    with app.test_request_context("/payments"):
        answer = render_portal_error(403, "Only the owner can change this.")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "Not allowed" in page and "Only the owner can change this." in page


@pytest.mark.parametrize(
    "path,portal",
    [
        ("/", True),
        ("/payments/1", True),
        ("/apiary", True),
        ("/api", False),
        ("/api/payments/status/X", False),
        ("/callback", False),
        ("/sandbox/daraja/x", False),
        ("/sandbox/phone/2547", True),
        ("/health", False),
        ("/transactions", False),
    ],
)
def test_which_paths_are_the_portals(app, path, portal):
    assert (errors.renderer_for(path) is web.render_error) is portal


def test_an_unexpected_failure_shows_the_portal_page_not_a_traceback():
    """A route that raises, on an app of its own: routes cannot be added to the shared one once it served."""
    app = create_app(dict(TEST_CONFIG))

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    @app.get("/api/boom")
    def api_boom():
        abort(500)

    client = app.test_client()
    answer = client.get("/boom")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "Something went wrong" in page and "a bug" not in page
    assert 'href="/login">Sign in</a>' in page
    assert "Something went wrong" not in client.get("/api/boom").get_data(as_text=True)
