"""Provider credentials are stored encrypted; API keys only as hashes."""

from sqlalchemy import text

from portal.extensions import db
from portal.models import Merchant


def test_credentials_and_keys_are_not_stored_in_clear(ctx, accounts):
    merchant = db.session.get(Merchant, accounts["merchant"]["id"])
    secret = merchant.daraja_consumer_secret
    assert secret and merchant.daraja_passkey.startswith("bfb279")
    raw = db.session.execute(
        text("SELECT daraja_consumer_secret, daraja_passkey FROM merchants WHERE id = :id"), {"id": merchant.id}
    ).one()
    assert secret not in raw[0] and "bfb279" not in raw[1]
    keys = db.session.execute(text("SELECT prefix, key_hash FROM api_keys")).all()
    api_key = accounts["merchant"]["api_key"]
    assert all(api_key not in (prefix + key_hash) for prefix, key_hash in keys)


def test_a_merchants_africas_talking_key_is_not_stored_in_clear(ctx, accounts):
    merchant = db.session.get(Merchant, accounts["merchant"]["id"])
    merchant.at_username, merchant.at_api_key = "shop", "atsk_0123456789abcdef"
    db.session.commit()
    raw = db.session.execute(text("SELECT at_username, at_api_key FROM merchants WHERE id = :id"), {"id": merchant.id})
    username, key = raw.one()
    assert username == "shop" and "0123456789abcdef" not in key
    db.session.expire_all()
    assert db.session.get(Merchant, merchant.id).at_api_key == "atsk_0123456789abcdef"
