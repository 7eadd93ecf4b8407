"""Water pricing on the settings page: shown as stored (the document's defaults until saved),
saved when it can sell, refused in words next to the field when it cannot, apart from the
provider credentials on the same page."""

import re

from portal.extensions import db
from portal.models import Merchant
from portal.services.water_pricing import WaterPricing, pricing_of
from tests.web.test_settings import form

GOOD = {"price_per_liter": "7", "rounding": "up", "min_amount": "7", "max_amount": "7,000"}


def htmx(token: str) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": token}


def sign_in(auth, account) -> str:
    auth.login(account["email"], account["password"])
    return auth.csrf_token("/settings")


def stored(app, merchant_id) -> tuple[WaterPricing, dict]:
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        return pricing_of(merchant), dict(merchant.settings)


def save(client, token, **fields):
    return client.post("/settings/water-pricing", data={**GOOD, **fields, "csrf_token": token}, headers=htmx(token))


def value_of(page: str, name: str) -> str:
    return re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page).group(1)


def test_the_page_shows_the_documents_defaults_until_saved(client, auth, accounts):
    sign_in(auth, accounts["merchant"])
    page = client.get("/settings").text
    assert 'id="pricing-form"' in page and "Water pricing" in page
    assert [value_of(page, n) for n in ("price_per_liter", "min_amount", "max_amount")] == ["5", "5", "10000"]
    assert '<option selected value="nearest">' in page


def test_pricing_that_can_sell_is_saved_and_used(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        merchant.settings = {"c2b": {"accounts": ["A1"]}}
        db.session.commit()
    token = sign_in(auth, accounts["merchant"])
    answer = save(client, token)
    assert answer.status_code == 200 and answer.text.startswith('<section id="pricing-form"')
    assert "Water pricing saved." in answer.text and value_of(answer.text, "max_amount") == "7000"
    pricing, settings = stored(app, merchant_id)
    assert pricing == WaterPricing(price_per_liter=7, rounding="up", min_amount=7, max_amount=7000)
    assert settings["c2b"] == {"accounts": ["A1"]}  # the other settings are kept
    preview = client.post(
        "/api/payments/preview", json={"amount": 52}, headers={"Authorization": f"Bearer {accounts['station']['key']}"}
    )
    assert preview.get_json()["data"]["amount"] == 56
    assert stored(app, accounts["other_merchant"]["id"])[0] == WaterPricing()  # another merchant's is its own
    plain = client.post("/settings/water-pricing", data={**GOOD, "price_per_liter": "6", "csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"] == "/settings"
    assert "Water pricing saved." in client.get("/settings").text
    assert stored(app, merchant_id)[0].price_per_liter == 6


def test_pricing_that_cannot_sell_is_refused_in_words(app, client, auth, accounts):
    token = sign_in(auth, accounts["merchant"])
    for fields, where, words in (
        ({"price_per_liter": "0"}, "price-per-liter", "The price per liter is a whole number of shillings from 1"),
        ({"price_per_liter": "5.50"}, "price-per-liter", "Enter whole shillings, digits only"),
        ({"price_per_liter": ""}, "price-per-liter", "Enter the price of one liter in whole shillings."),
        ({"rounding": "sideways"}, "rounding", "Input should be &#39;nearest&#39;, &#39;down&#39; or &#39;up&#39;"),
        ({"max_amount": "300000"}, "max-amount", "The largest sale is a whole number of shillings from 1 to 250,000."),
        ({"min_amount": "8000"}, None, "The smallest sale cannot be more than the largest."),
        ({"price_per_liter": "8000"}, None, "The largest sale must buy at least one liter (KES 8,000)."),
    ):
        answer = save(client, token, **fields)
        assert answer.status_code == 422 and "<html" not in answer.text, fields
        if where:
            assert re.search(rf'id="{where}-error"[^>]*>[^<]*{re.escape(words)}', answer.text), (fields, answer.text)
        else:
            assert re.search(rf'class="form-error" role="alert">{re.escape(words)}', answer.text), answer.text
    assert stored(app, accounts["merchant"]["id"])[0] == WaterPricing()  # nothing was saved
    plain = client.post("/settings/water-pricing", data={**GOOD, "min_amount": "0", "csrf_token": token})
    assert plain.status_code == 422 and "<html" in plain.text and 'id="settings-form"' in plain.text


def test_the_credentials_form_leaves_pricing_alone(app, client, auth, accounts):
    merchant_id = accounts["merchant"]["id"]
    token = sign_in(auth, accounts["merchant"])
    save(client, token)
    answer = client.post("/settings", data=form(token, daraja_shortcode="600123"))
    assert answer.status_code == 302, answer.text
    assert stored(app, merchant_id)[0].price_per_liter == 7
