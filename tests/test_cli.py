"""The flask commands a developer or operator runs."""

import json
import re

from portal.extensions import db
from portal.models import ApiKey, Merchant, User
from portal.services.sms_reports import delivery_report_url


def test_seed_demo_is_idempotent_and_prints_json(runner, app):
    first = runner.invoke(args=["seed-demo", "--json"])
    second = runner.invoke(args=["seed-demo", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == json.loads(second.output)
    data = json.loads(first.output)
    for label in ("merchant", "other_merchant"):
        assert {"email", "password", "api_key", "paystack_secret_key", "paystack_public_key"} <= set(data[label])
        assert data[label]["paystack_secret_key"].startswith("sk_test_")
    with app.app_context():
        assert Merchant.query.count() == 2 and User.query.count() == 2 and ApiKey.query.count() == 2
        user = User.query.filter_by(email=data["merchant"]["email"]).one()
        assert user.check_password(data["merchant"]["password"])
        assert ApiKey.find_active(data["merchant"]["api_key"]).merchant_id == user.merchant_id


def test_seed_demo_says_where_the_demo_merchants_sms_go_and_their_reports_come_from(runner, app):
    output = runner.invoke(args=["seed-demo"]).output
    assert "sms: sent through the Africa's Talking simulator" in output
    assert re.search(r"Paystack: sk_test_[0-9a-f]{40} / pk_test_[0-9a-f]{40}", output)
    with app.app_context():
        assert f"set SANDBOX_AT_DELIVERY_REPORT_URL={delivery_report_url()}" in output
    app.config["SANDBOX_AT_DELIVERY_REPORT_URL"] = "http://127.0.0.1:5000/api/sms/delivery-reports?ref=AT&token=t"
    assert "delivery reports go to http://127.0.0.1:5000/api/sms/" in runner.invoke(args=["seed-demo"]).output


def test_merchant_and_api_key_creation(runner, app, live_server):
    import requests

    made = runner.invoke(
        args=["merchant", "create", "--name", "Mama Mboga", "--email", "Mama@Example.com", "--password", "s3cret-pass"]
    )
    assert made.exit_code == 0, made.output
    again = runner.invoke(
        args=["merchant", "create", "--name", "X", "--email", "mama@example.com", "--password", "s3cret-pass"]
    )
    assert again.exit_code != 0 and "already exists" in again.output
    key = runner.invoke(args=["apikey", "create", "--email", "mama@example.com"]).output.strip()
    assert key.startswith("mpk_")
    answer = requests.get(live_server + "/transactions", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200
    with app.app_context():
        merchant = db.session.query(Merchant).filter_by(name="Mama Mboga").one()
        assert merchant.has_daraja  # sandbox credentials by default while SANDBOX is on
    missing = runner.invoke(args=["apikey", "create", "--email", "nobody@example.com"])
    assert missing.exit_code != 0
