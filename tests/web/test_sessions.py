"""Signing out ends the session for good: a copy of the cookie taken before does not work after."""

from portal.extensions import db
from portal.models import User
from tests.conftest import AuthActions


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def test_a_session_cookie_copied_before_sign_out_is_refused_after_it(app, client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    copied = session_cookie(client)
    assert with_cookie(app, copied).get("/").status_code == 200  # the copy works while the session lives

    assert client.post("/logout", data={"csrf_token": auth.csrf_token("/")}).status_code == 302
    thief = with_cookie(app, copied)
    answer = thief.get("/payments")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    htmx = thief.get("/dashboard/latest", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")


def test_signing_in_again_after_sign_out_works_and_the_old_copy_stays_dead(app, client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    copied = session_cookie(client)
    client.post("/logout", data={"csrf_token": auth.csrf_token("/")})
    again = app.test_client()
    AuthActions(again).login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    assert again.get("/").status_code == 200
    assert with_cookie(app, copied).get("/").status_code == 302


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(app, client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    assert client.get("/").status_code == 200
    with app.app_context():
        User.query.filter_by(email=accounts["merchant"]["email"]).one().set_password("a-brand-new-password")
        db.session.commit()
    assert client.get("/").status_code == 302
    assert (
        AuthActions(app.test_client()).login(accounts["merchant"]["email"], "a-brand-new-password").status_code == 302
    )


def test_another_users_sign_out_leaves_my_session_alone(app, client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    other = app.test_client()
    other_auth = AuthActions(other)
    other_auth.login(accounts["other_merchant"]["email"], accounts["other_merchant"]["password"])
    other.post("/logout", data={"csrf_token": other_auth.csrf_token("/")})
    assert client.get("/").status_code == 200
