"""The settings page: secrets masked and kept unless replaced, bad input refused in words, nothing else touched."""

import re
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from portal.extensions import db
from portal.models import Merchant
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY
from portal.services.merchants import create_merchant

SECRETS = ("daraja_consumer_key", "daraja_consumer_secret", "daraja_passkey", "paystack_secret_key")
PAYSTACK_KEY = "sk_test_0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"


def stored(app, merchant_id) -> dict:
    with app.app_context():
        m = db.session.get(Merchant, merchant_id)
        return {
            name: getattr(m, name)
            for name in (*SECRETS, "daraja_shortcode", "daraja_transaction_type", "daraja_party_b")
        }


def raw_column(app, merchant_id, column) -> str | None:
    with app.app_context():
        return db.session.execute(text(f"SELECT {column} FROM merchants WHERE id = :id"), {"id": merchant_id}).scalar()


def set_paystack(app, merchant_id, key=PAYSTACK_KEY):
    with app.app_context():
        db.session.get(Merchant, merchant_id).paystack_secret_key = key
        db.session.commit()


def form(token, **fields) -> dict:
    """The form as a merchant submits it without touching any secret input."""
    data = {
        "csrf_token": token,
        "daraja_consumer_key": "",
        "daraja_consumer_secret": "",
        "daraja_passkey": "",
        "daraja_shortcode": "174379",
        "daraja_transaction_type": "CustomerPayBillOnline",
        "daraja_party_b": "",
        "paystack_secret_key": "",
        "daraja_initiator_name": "testapi",
        "daraja_initiator_password": "",
        "daraja_certificate": "",
    }
    return {**data, **fields}


def sign_in(auth, account) -> str:
    auth.login(account["email"], account["password"])
    return auth.csrf_token("/settings")


def test_settings_need_a_login(client):
    assert "/login" in client.get("/settings").headers["Location"]


def test_secrets_are_masked_and_plain_fields_prefilled(app, client, auth, accounts, live_server):
    merchant_id = accounts["merchant"]["id"]
    set_paystack(app, merchant_id)
    before = stored(app, merchant_id)
    sign_in(auth, accounts["merchant"])
    page = client.get("/settings").get_data(as_text=True)
    assert "<html" in page
    for name in SECRETS:
        assert before[name] not in page
        assert f"••••••••{before[name][-4:]}" in page
    assert "••••••••c919" in page  # the public sandbox passkey
    assert 'name="daraja_shortcode" type="text" value="174379"' in page
    assert '<option selected value="CustomerPayBillOnline">' in page
    for name in SECRETS:  # every secret input is empty, waiting for a replacement
        assert re.search(rf'<input[^>]*name="{name}"[^>]*value=""', page)


def test_callback_addresses_are_shown(client, auth, accounts, live_server):
    sign_in(auth, accounts["merchant"])
    page = client.get("/settings").get_data(as_text=True)
    for path in ("/callback", "/api/mpesa/callback/stk", "/api/payments/mpesa/callback"):
        assert f"<code>{live_server}{path}</code>" in page
    assert "adds a per-payment token" in page and "nothing needs to be registered with Safaricom" in page


def test_empty_secret_inputs_keep_the_stored_secrets(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    set_paystack(app, merchant_id)
    before = stored(app, merchant_id)
    token = sign_in(auth, accounts["merchant"])
    answer = client.post(
        "/settings",
        data=form(
            token, daraja_shortcode="600123", daraja_transaction_type="CustomerBuyGoodsOnline", daraja_party_b="654321"
        ),
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings"
    assert "Settings saved." in client.get("/settings").get_data(as_text=True)
    after = stored(app, merchant_id)
    assert {name: after[name] for name in SECRETS} == {name: before[name] for name in SECRETS}
    assert (after["daraja_shortcode"], after["daraja_transaction_type"], after["daraja_party_b"]) == (
        "600123",
        "CustomerBuyGoodsOnline",
        "654321",
    )


def test_filled_secret_inputs_replace_them_encrypted_and_only_for_this_merchant(app, client, auth, accounts):
    merchant_id, other_id = accounts["merchant"]["id"], accounts["other_merchant"]["id"]
    other_before = stored(app, other_id)
    token = sign_in(auth, accounts["merchant"])
    new = {
        "daraja_consumer_key": "NewConsumerKey0001",
        "daraja_consumer_secret": "NewConsumerSecret0002",
        "daraja_passkey": "  new-passkey-with-spaces-pasted-around-0003  ",
        "paystack_secret_key": PAYSTACK_KEY,
    }
    answer = client.post("/settings", data=form(token, **new))
    assert answer.status_code == 302
    after = stored(app, merchant_id)
    assert after["daraja_passkey"] == "new-passkey-with-spaces-pasted-around-0003"
    for name in ("daraja_consumer_key", "daraja_consumer_secret", "paystack_secret_key"):
        assert after[name] == new[name]
        raw = raw_column(app, merchant_id, name)
        assert raw and new[name] not in raw  # encrypted at rest
    assert stored(app, other_id) == other_before

    page = client.get("/settings").get_data(as_text=True)
    assert "••••••••0003" in page and "••••••••c3d4" in page
    assert PAYSTACK_KEY not in page and "NewConsumerSecret0002" not in page


def test_bad_shortcode_is_refused_in_words_and_changes_nothing(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    before = stored(app, merchant_id)
    token = sign_in(auth, accounts["merchant"])
    answer = client.post(
        "/settings",
        data=form(token, daraja_shortcode="12ab", daraja_passkey="typed-new-passkey", paystack_secret_key=PAYSTACK_KEY),
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "<html" in page
    assert 'id="shortcode-error" class="field-error">The business number is 5 to 7 digits, numbers only' in page
    assert "Nothing was saved." in page
    assert "typed-new-passkey" not in page and PAYSTACK_KEY not in page  # not echoed back either
    assert stored(app, merchant_id) == before
    assert before["daraja_passkey"] == PUBLIC_PASSKEY


def test_shortcode_must_be_five_to_seven_plain_digits(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    for shortcode in ("1234", "12345678", "17 4379", "١٧٤٣٧٩", ""):
        answer = client.post("/settings", data=form(token, daraja_shortcode=shortcode), headers={"HX-Request": "true"})
        assert answer.status_code == 422, shortcode
        assert 'id="shortcode-error"' in answer.get_data(as_text=True)
    for shortcode in ("12345", "1234567"):
        assert client.post("/settings", data=form(token, daraja_shortcode=shortcode)).status_code == 302
    assert stored(app, accounts["merchant"]["id"])["daraja_shortcode"] == "1234567"


def test_other_bad_values_are_explained_next_to_their_field(app, client, auth, accounts):
    before = stored(app, accounts["merchant"]["id"])
    token = sign_in(auth, accounts["merchant"])
    cases = {
        "paystack-secret": {"paystack_secret_key": "pk_test_0123456789abcdef"},
        "till": {"daraja_party_b": "12-34"},
        "transaction-type": {"daraja_transaction_type": "CustomerSendMoney"},
        "consumer-key": {"daraja_consumer_key": "has a space"},
    }
    messages = {
        "paystack-secret": "starts with sk_test_ or sk_live_",
        "till": "The till number is 5 to 7 digits",
        "transaction-type": "Choose Paybill or Buy Goods.",
        "consumer-key": "copy it again",
    }
    for field_id, fields in cases.items():
        answer = client.post("/settings", data=form(token, **fields))
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422, field_id
        error = page.split(f'id="{field_id}-error" class="field-error">', 1)[1].split("</p>", 1)[0]
        assert messages[field_id] in error
    assert stored(app, accounts["merchant"]["id"]) == before


def test_a_paystack_only_merchant_needs_no_shortcode(app, client, auth):
    with app.app_context():
        merchant_id = create_merchant(
            "Paystack Only", "paystack@example.com", "a-long-password", sandbox_credentials=False
        ).id
    token = sign_in(auth, {"email": "paystack@example.com", "password": "a-long-password"})
    answer = client.post("/settings", data=form(token, daraja_shortcode="", paystack_secret_key=PAYSTACK_KEY))
    assert answer.status_code == 302
    after = stored(app, merchant_id)
    assert after["paystack_secret_key"] == PAYSTACK_KEY and after["daraja_shortcode"] is None
    refused = client.post("/settings", data=form(token, daraja_shortcode="", daraja_consumer_key="SomeKey123"))
    assert refused.status_code == 422 and "Enter your M-Pesa business number" in refused.get_data(as_text=True)


def test_a_form_without_csrf_token_changes_nothing(app, client, auth, accounts):
    before = stored(app, accounts["merchant"]["id"])
    token = sign_in(auth, accounts["merchant"])
    data = form(token, daraja_shortcode="600123", paystack_secret_key=PAYSTACK_KEY)
    del data["csrf_token"]
    assert client.post("/settings", data=data).status_code == 303
    assert stored(app, accounts["merchant"]["id"]) == before


def test_htmx_gets_the_form_partial_and_a_redirect_after_saving(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    fragment = client.get("/settings", headers=headers)
    assert "<html" not in fragment.get_data(as_text=True) and "HX-Request" in fragment.headers["Vary"]
    refused = client.post("/settings", data=form(token, daraja_shortcode="12"), headers=headers)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "<html" not in body
    assert body.lstrip().startswith('<section id="settings-form"')
    saved = client.post("/settings", data=form(token, daraja_shortcode="600123"), headers=headers)
    assert saved.status_code == 204 and saved.headers["HX-Redirect"] == "/settings"  # a page load, not a 302
    assert "Settings saved." in client.get("/settings").get_data(as_text=True)
    assert stored(app, accounts["merchant"]["id"])["daraja_shortcode"] == "600123"


# -- the B2C initiator ---------------------------------------------------------------------------
def certificate(common_name: str, key=None) -> str:
    """A self-signed certificate in PEM (RSA unless another key is given)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM).decode()


def initiator(app, merchant_id) -> tuple:
    with app.app_context():
        m = db.session.get(Merchant, merchant_id)
        return m.daraja_initiator_name, m.daraja_initiator_password, m.daraja_certificate


def test_the_initiator_password_is_never_shown_and_the_certificate_is_described(app, client, auth, accounts):
    name, password, pem = initiator(app, accounts["merchant"]["id"])
    sign_in(auth, accounts["merchant"])
    page = client.get("/settings").get_data(as_text=True)
    assert 'name="daraja_initiator_name" type="text" value="testapi"' in page
    assert password not in page and password[-4:] not in page.split("initiator-password-hint", 1)[1][:400]
    assert re.search(r'<input[^>]*name="daraja_initiator_password"[^>]*value=""', page)
    hint = page.split('id="initiator-password-hint"', 1)[1].split("</p>", 1)[0]
    assert "••••••••</span>" in hint  # stored, and nothing of it shown
    assert "CN=Daraja simulator" in page and "SHA-256 fingerprint" in page
    assert pem.splitlines()[1] not in page  # the certificate box is empty: a new one replaces it


def test_a_new_initiator_and_certificate_replace_the_stored_ones_for_this_merchant_only(app, client, auth, accounts):
    merchant_id, other_id = accounts["merchant"]["id"], accounts["other_merchant"]["id"]
    other_before = initiator(app, other_id)
    production = certificate("apicrypt.safaricom.co.ke")
    token = sign_in(auth, accounts["merchant"])
    pasted = "\r\n" + production.replace("\n", "\r\n")  # as a browser sends a textarea
    new = {"daraja_initiator_name": "apiop37", "daraja_initiator_password": "N3w-Pass!*!", "daraja_certificate": pasted}
    data = form(token, **new)
    assert client.post("/settings", data=data).status_code == 302
    assert initiator(app, merchant_id) == ("apiop37", "N3w-Pass!*!", production)
    assert "N3w-Pass!*!" not in raw_column(app, merchant_id, "daraja_initiator_password")  # encrypted at rest
    assert initiator(app, other_id) == other_before
    page = client.get("/settings").get_data(as_text=True)
    assert "CN=apicrypt.safaricom.co.ke" in page and "N3w-Pass!*!" not in page

    # empty password and certificate boxes keep what is stored
    assert client.post("/settings", data=form(token, daraja_initiator_name="apiop38")).status_code == 302
    assert initiator(app, merchant_id) == ("apiop38", "N3w-Pass!*!", production)


def test_a_bad_certificate_is_refused_in_words_and_changes_nothing(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    before = initiator(app, merchant_id)
    pem = before[2]
    token = sign_in(auth, accounts["merchant"])
    cases = {
        "garbage": "hello, this is my certificate",
        "truncated": pem[: len(pem) // 2],
        "a private key": rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode(),
        "not RSA": certificate("ec", key=ec.generate_private_key(ec.SECP256R1())),
    }
    for name, bad in cases.items():
        answer = client.post("/settings", data=form(token, daraja_certificate=bad, daraja_initiator_password="Typed!1"))
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422, name
        error = page.split('id="certificate-error" class="field-error">', 1)[1].split("</p>", 1)[0]
        assert "That is not a certificate" in error and "BEGIN CERTIFICATE" in error, name
        assert "Typed!1" not in page, name  # the typed password is not echoed back
    assert initiator(app, merchant_id) == before


def test_a_password_needs_an_initiator_name(app, client, auth, accounts):
    before = initiator(app, accounts["merchant"]["id"])
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/settings", data=form(token, daraja_initiator_name="", daraja_initiator_password="Pass!23"))
    assert answer.status_code == 422
    assert "Enter the initiator name" in answer.get_data(as_text=True)
    cleared = client.post("/settings", data=form(token, daraja_initiator_name=""))  # a password is stored
    assert cleared.status_code == 422
    for field in ("daraja_initiator_password", "daraja_initiator_name"):
        spaced = client.post("/settings", data=form(token, **{field: "has space"}))
        assert spaced.status_code == 422 and "has no spaces" in spaced.get_data(as_text=True)
    assert initiator(app, accounts["merchant"]["id"]) == before


def test_an_africas_talking_app_is_saved_encrypted_and_shown_masked(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    token = sign_in(auth, accounts["merchant"])
    fields = {"at_username": "demo-shop", "at_api_key": "atsk_0f1e2d3c4b5a6978a1b2", "at_sender_id": "DEMO-SHOP"}
    assert client.post("/settings", data=form(token, **fields)).status_code == 302
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        assert (merchant.at_username, merchant.at_api_key, merchant.at_sender_id) == tuple(fields.values())
    assert raw_column(app, merchant_id, "at_username") == "demo-shop"  # a username is no secret
    assert fields["at_api_key"] not in raw_column(app, merchant_id, "at_api_key")
    page = client.get("/settings").get_data(as_text=True)
    assert "••••••••a1b2" in page and fields["at_api_key"] not in page
    assert 'name="at_username" type="text" value="demo-shop"' in page
    # saved again without touching the key: the key stays, and so does the username
    assert client.post("/settings", data=form(token, at_username="demo-shop")).status_code == 302
    with app.app_context():
        assert db.session.get(Merchant, merchant_id).at_api_key == fields["at_api_key"]


def test_the_delivery_reports_address_for_the_merchants_own_app_is_shown(client, auth, accounts, live_server):
    sign_in(auth, accounts["merchant"])
    page = client.get("/settings").get_data(as_text=True)
    shown = re.search(r"<code>(http[^<]*/api/sms/delivery-reports\?[^<]*)</code>", page).group(1)
    assert shown.startswith(live_server) and f"ref=M{accounts['merchant']['id']}&amp;token=" in shown


def test_an_africas_talking_key_needs_its_username_and_the_other_way_round(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    answer = client.post("/settings", data=form(token, at_api_key="atsk_0f1e2d3c4b5a6978a1b2"))
    assert answer.status_code == 422
    assert "Enter the username of the Africa&#39;s Talking app" in answer.get_data(as_text=True)
    answer = client.post("/settings", data=form(token, at_username="demo-shop"))
    assert answer.status_code == 422 and "Paste the API key of this Africa" in answer.get_data(as_text=True)
    answer = client.post("/settings", data=form(token, at_sender_id="A SENDER ID TOO LONG"))
    assert answer.status_code == 422 and "A sender ID is up to 11 letters" in answer.get_data(as_text=True)
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        assert (merchant.at_username, merchant.at_api_key, merchant.at_sender_id) == (None, None, None)


def test_the_paystack_public_key_is_kept_in_plain_and_a_secret_key_in_its_box_refused(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    token = sign_in(auth, accounts["merchant"])
    refused = client.post("/settings", data=form(token, paystack_public_key=PAYSTACK_KEY))
    assert refused.status_code == 422 and "starts with pk_test_ or pk_live_" in refused.get_data(as_text=True)
    public = "pk_test_0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
    assert client.post("/settings", data=form(token, paystack_public_key=public)).status_code in (200, 302, 303)
    assert raw_column(app, merchant_id, "paystack_public_key") == public
    assert f'value="{public}"' in client.get("/settings").get_data(as_text=True)  # prefilled: it is public
