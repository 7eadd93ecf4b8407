"""Sign-in, sign-out and the dashboard, through the real forms with CSRF on."""

import pytest

from portal.extensions import db
from portal.models import Payment


def add_payment(app, merchant_id, reference, phone):
    with app.app_context():
        db.session.add(
            Payment(
                merchant_id=merchant_id,
                reference=reference,
                rail="mpesa",
                kind="stk_push",
                status="completed",
                amount=12345,
                phone=phone,
                api="checkout",
                meta={},
                account_reference=reference,
                receipt="QK" + reference[-8:],
            )
        )
        db.session.commit()


def test_dashboard_needs_a_login(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=/"


def test_wrong_password_is_refused(client, auth, accounts):
    answer = auth.login(accounts["merchant"]["email"], "not-the-password")
    assert answer.status_code == 422
    assert "Wrong email or password." in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_missing_csrf_token_is_refused(client, accounts):
    answer = client.post(
        "/login", data={"email": accounts["merchant"]["email"], "password": accounts["merchant"]["password"]}
    )
    assert answer.status_code == 400
    assert "The form expired" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_merchant_sees_only_its_own_payments(app, client, auth, accounts):
    add_payment(app, accounts["merchant"]["id"], "MINE00000001", "254708374149")
    add_payment(app, accounts["other_merchant"]["id"], "THEIRS000001", "254711111111")
    answer = auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    assert answer.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "MINE00000001" in page and "KES 123.45" in page
    assert "THEIRS000001" not in page and "254711111111" not in page
    assert "Sandbox" in page  # the banner


@pytest.mark.parametrize(
    "target,expected",
    [("/?x=1", "/?x=1"), ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/")],
)
def test_next_only_redirects_to_our_own_paths(client, auth, accounts, target, expected):
    token = auth.csrf_token()
    answer = client.post(
        f"/login?next={target}",
        data={
            "email": accounts["merchant"]["email"],
            "password": accounts["merchant"]["password"],
            "csrf_token": token,
        },
    )
    assert answer.headers["Location"] == expected


def test_logout_is_a_post_with_csrf(client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    assert client.get("/logout").status_code == 405
    refused = client.post("/logout")  # no CSRF token: nothing happens, the merchant is told why
    assert refused.status_code == 303 and client.get("/").status_code == 200
    token = auth.csrf_token("/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, auth, accounts):
    answer = auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_htmx_request_with_expired_session_gets_401_and_a_redirect(client):
    answer = client.get("/", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"].startswith("/login")


def test_htmx_post_with_a_stale_csrf_token_is_sent_back_not_painted_in(client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    answer = client.post(
        "/payments/new",
        data={"phone": "0712345678", "amount": "10"},
        headers={"HX-Request": "true", "Referer": "http://localhost/payments/new"},
    )
    assert answer.status_code == 400
    assert answer.headers["HX-Redirect"] == "/payments/new" and answer.get_data() == b""
    assert "nothing was changed" in client.get("/payments/new").get_data(as_text=True)


def test_htmx_post_after_the_session_expired_is_sent_to_login(client):
    answer = client.post("/payments/new", data={"phone": "0712345678"}, headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["HX-Redirect"].startswith("/login")


def test_sign_in_is_throttled(client, auth, accounts):
    from portal.extensions import limiter

    token = auth.csrf_token()
    limiter.enabled = True
    limiter.reset()
    try:
        codes = [
            client.post(
                "/login", data={"email": accounts["merchant"]["email"], "password": f"guess-{i}", "csrf_token": token}
            ).status_code
            for i in range(11)
        ]
        blocked = client.post(
            "/login",
            data={
                "email": accounts["merchant"]["email"],
                "password": accounts["merchant"]["password"],
                "csrf_token": token,
            },
        )
    finally:
        limiter.reset()
    assert codes[:10] == [422] * 10 and codes[10] == 429
    assert blocked.status_code == 429  # even the right password waits: guessing must not pay
    assert "Too many sign-in attempts" in blocked.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # reading the page is not limited
