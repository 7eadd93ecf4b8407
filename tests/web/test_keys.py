"""The API keys page: a key is shown once and works, revoking stops it, and merchants only touch their own."""

import re

import requests

from portal.extensions import db
from portal.models import ApiKey
from tests.conftest import AuthActions

REVOKE_QUESTION = "Revoke this key? Systems using it will stop working."


def htmx(token: str) -> dict:
    """What htmx sends: its request header and the CSRF header base.html puts on <body>."""
    return {"HX-Request": "true", "X-CSRFToken": token}


def sign_in(auth, account) -> str:
    auth.login(account["email"], account["password"])
    return auth.csrf_token("/keys")


def shown_key(page: str) -> str | None:
    match = re.search(r'id="new-key"[^>]*value="([^"]+)"', page)
    return match.group(1) if match else None


def key_row(app, name: str) -> ApiKey:
    with app.app_context():
        row = ApiKey.query.filter_by(name=name).one()
        db.session.expunge(row)
        return row


def transactions(live_server, key: str) -> int:
    return requests.get(
        f"{live_server}/transactions", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).status_code


def create_key(client, token, name="Online shop"):
    return client.post("/keys", data={"name": name, "csrf_token": token}, headers=htmx(token))


def test_keys_page_needs_a_login(client):
    assert "/login" in client.get("/keys").headers["Location"]
    assert client.get("/keys", headers={"HX-Request": "true"}).status_code == 401


def test_new_key_is_shown_once_and_works_as_a_bearer_key(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    answer = create_key(client, token)
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    fragment = answer.get_data(as_text=True)
    assert "<html" not in fragment and 'id="key-form"' in fragment
    assert 'id="key-list" class="card" hx-swap-oob="true"' in fragment  # the list refreshes beside the form
    assert "will not be shown again" in fragment and ">Copy</button>" in fragment
    key = shown_key(fragment)
    assert key and key.startswith("mpk_")
    assert f"<code>{key[:12]}…</code>" in fragment and "Online shop" in fragment

    assert transactions(live_server, key) == 200
    page = client.get("/keys").get_data(as_text=True)
    assert key not in page and shown_key(page) is None
    assert "Online shop" in page and f"{key[:12]}…" in page
    row = key_row(app, "Online shop")
    assert row.merchant_id == accounts["merchant"]["id"] and row.last_used_at is not None
    assert re.search(rf'id="key-{row.id}">(?:(?!</tr>).)*>active<', page, re.S)


def test_plain_post_renders_the_whole_page_with_the_key(client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/keys", data={"name": "Till 2", "csrf_token": token})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201 and "<html" in page
    key = shown_key(page)
    assert key and "Till 2" in page and "will not be shown again" in page
    assert transactions(live_server, key) == 200


def test_a_new_key_is_listed_as_never_used(client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    create_key(client, token, "Unused")
    page = client.get("/keys").get_data(as_text=True)
    assert re.search(r"Unused</td>(?:(?!</tr>).)*<td>never</td>", page, re.S)


def test_a_bad_name_is_refused_next_to_the_field(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    for name, message in (("   ", "Give the key a name"), ("x" * 81, "80 characters or fewer")):
        answer = create_key(client, token, name)
        fragment = answer.get_data(as_text=True)
        assert answer.status_code == 422 and "<html" not in fragment
        assert re.search(rf'id="key-name-error"[^>]*>[^<]*{message}', fragment)
        assert 'aria-invalid="true"' in fragment and shown_key(fragment) is None
    plain = client.post("/keys", data={"name": "", "csrf_token": token})
    assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True)
    with app.app_context():
        assert ApiKey.query.count() == 2  # the two demo keys, nothing more


def test_revoked_key_stops_working_and_stays_listed(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    key = shown_key(create_key(client, token, "Old till").get_data(as_text=True))
    row = key_row(app, "Old till")
    page = client.get("/keys").get_data(as_text=True)
    assert f'hx-confirm="{REVOKE_QUESTION}"' in page and f"/keys/{row.id}/revoke" in page

    answer = client.post(f"/keys/{row.id}/revoke", data={"csrf_token": token}, headers=htmx(token))
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in fragment
    assert fragment.lstrip().startswith('<section id="key-list"') and "revoked" in fragment
    assert transactions(live_server, key) == 401
    assert transactions(live_server, accounts["merchant"]["api_key"]) == 200  # the others keep working
    revoked = key_row(app, "Old till")
    assert revoked.revoked_at is not None

    again = client.post(f"/keys/{row.id}/revoke", data={"csrf_token": token})  # plain form: PRG
    assert again.status_code == 303 and again.headers["Location"].endswith("/keys")
    assert key_row(app, "Old till").revoked_at == revoked.revoked_at
    assert "Key “Old till” revoked." in client.get("/keys").get_data(as_text=True)


def test_revoking_is_a_post(client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    assert client.get("/keys/1/revoke").status_code == 405


def test_another_merchant_can_neither_see_nor_revoke_the_key(app, client, auth, accounts, live_server):
    token = sign_in(auth, accounts["merchant"])
    key = shown_key(create_key(client, token, "Counter tablet").get_data(as_text=True))
    row = key_row(app, "Counter tablet")

    other = app.test_client()
    other_token = sign_in(AuthActions(other), accounts["other_merchant"])
    page = other.get("/keys").get_data(as_text=True)
    assert "Counter tablet" not in page and row.prefix not in page
    for headers in ({}, htmx(other_token)):
        answer = other.post(f"/keys/{row.id}/revoke", data={"csrf_token": other_token}, headers=headers)
        assert answer.status_code == 404
    assert key_row(app, "Counter tablet").revoked_at is None
    assert transactions(live_server, key) == 200


def test_forms_without_a_csrf_token_change_nothing(app, client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    refused = client.post("/keys", data={"name": "Sneaky"})
    assert refused.status_code == 303  # told why, on the next page
    with app.app_context():
        demo = ApiKey.query.filter_by(merchant_id=accounts["merchant"]["id"]).one()
        assert demo.name == "Demo key"
    htmx = client.post(f"/keys/{demo.id}/revoke", headers={"HX-Request": "true"})
    assert htmx.status_code == 400 and htmx.headers["HX-Redirect"]  # htmx is sent back, nothing painted in
    with app.app_context():
        assert db.session.get(ApiKey, demo.id).revoked_at is None
