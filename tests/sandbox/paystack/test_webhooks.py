"""The Paystack simulator's webhooks: signed over the exact body with the integration's secret key,
sent to its dashboard's webhook URL, retried as Paystack's test mode retries (at a fixed
interval, ten times), every attempt kept."""

import hashlib
import hmac
import json

from portal.models import SandboxDelivery
from portal.providers.paystack import signature, verify_signature
from portal.sandbox import delivery
from portal.sandbox.paystack import webhooks
from tests.conftest import wait_for
from tests.helpers import settled
from tests.sandbox.support import free_port_url, set_paystack_webhook


def test_the_signature_is_hmac_sha512_of_the_raw_body_with_the_secret_key(paystack, hooks):
    paystack.charge("+254712345678", reference="signed-1")
    hooks.wait_at("/paystack/webhook")
    [record] = hooks.at_path("/paystack/webhook")
    raw, header = record["raw"], record["headers"]["X-Paystack-Signature"]
    assert header == hmac.new(paystack.key.encode(), raw, hashlib.sha512).hexdigest() == signature(raw, paystack.key)
    assert verify_signature(raw, header, paystack.key)
    assert verify_signature(raw, header.upper(), paystack.key)  # hex either case
    tampered = raw.replace(b'"amount":10000', b'"amount":1000000')
    assert tampered != raw and not verify_signature(tampered, header, paystack.key)
    reserialised = json.dumps(json.loads(raw), indent=2).encode()  # the same JSON, other bytes
    assert not verify_signature(reserialised, header, paystack.key)
    assert not verify_signature(raw, header, "sk_test_someone_else")
    assert not verify_signature(raw, None, paystack.key) and not verify_signature(raw, "", paystack.key)
    assert not verify_signature(raw, "zz\u00e9", paystack.key)


def test_each_integration_signs_with_its_own_key(app, paystack, other_paystack, receiver):
    app.config["SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY"] = 0.1
    set_paystack_webhook(app, other_paystack.key, receiver.at("/other"))
    other_paystack.charge("+254712345678", reference="other-1")
    receiver.wait_at("/other")
    [record] = receiver.at_path("/other")
    assert verify_signature(record["raw"], record["headers"]["X-Paystack-Signature"], other_paystack.key)
    assert not verify_signature(record["raw"], record["headers"]["X-Paystack-Signature"], paystack.key)


def test_a_refused_webhook_is_retried_at_a_fixed_interval_until_it_is_taken(app, paystack, hooks):
    app.config["SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY"] = 1.0
    hooks.refuse = [500, 503, 404]  # anything but 2xx is a failed attempt
    paystack.charge("+254712345678", reference="retried-1")
    [event] = hooks.wait_at("/paystack/webhook", timeout=20)
    assert event["data"]["reference"] == "retried-1"
    attempts = [r["at"] for r in hooks.refused] + [hooks.at_path("/paystack/webhook")[0]["at"]]
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert len(gaps) == 3 and all(gap >= 1.0 for gap in gaps)
    assert gaps[2] < 3.5  # a fixed interval: doubling would have made the third wait 4 seconds

    def all_attempts_recorded():  # the job records an attempt after its answer has come back
        with app.app_context():
            [row] = delivery.history("paystack", "retried-1")
        return row if len(row["attempts"]) == 4 else None

    row = wait_for(all_attempts_recorded, what="the fourth attempt's record")
    assert [a["outcome"] for a in row["attempts"]] == ["HTTP 500", "HTTP 503", "HTTP 404", "HTTP 200"]
    assert row["status"] == "delivered" and row["kind"] == "charge.success"


def test_after_its_retries_a_webhook_is_given_up(app, paystack, receiver):
    app.config.update(SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY=0.05, SANDBOX_PAYSTACK_WEBHOOK_RETRIES=2)
    set_paystack_webhook(app, paystack.key, free_port_url("/webhook"))  # nobody listens
    paystack.charge("+254712345678", reference="given-up")

    def failed():
        with app.app_context():
            rows = delivery.history("paystack", "given-up")
        return rows if rows and rows[0]["status"] == "failed" else None

    [row] = wait_for(failed, what="the webhook to be given up")
    assert len(row["attempts"]) == 3 and all(a["outcome"].startswith("failed:") for a in row["attempts"])


def test_paystacks_test_mode_policy_is_hourly_ten_times_with_thirty_seconds_each(app, ctx):
    policy = webhooks.retry_policy()
    assert (policy.retries, policy.backoff, policy.factor) == (10, 3600.0, 1.0)
    assert app.config["SANDBOX_PAYSTACK_WEBHOOK_TIMEOUT"] == 30.0


def test_the_rows_of_a_webhook_carry_paystacks_policy(app, paystack, receiver):
    set_paystack_webhook(app, paystack.key, free_port_url("/webhook"))
    paystack.charge("+254712345678", reference="policy-1")
    paystack.final("policy-1")
    with app.app_context():
        row = wait_for(lambda: SandboxDelivery.query.filter_by(subject="policy-1").first(), what="the webhook's row")
        assert (row.max_attempts, row.backoff, row.backoff_factor, row.timeout) == (11, 3600.0, 1.0, 30.0)
        assert row.headers["x-paystack-signature"] and row.provider == "paystack"
    # its next attempt, an hour away, goes with the Redis db every test starts from


def test_without_a_webhook_url_nothing_is_sent(app, paystack, receiver):
    set_paystack_webhook(app, paystack.key, None)
    paystack.charge("+254712345678", reference="no-url")
    assert paystack.final("no-url")["status"] == "success"
    settled(app)
    with app.app_context():
        assert delivery.history("paystack", "no-url") == []


def test_provisioning_points_webhooks_at_the_apps_own_route(app, ctx, accounts):
    from portal.sandbox.paystack import integrations
    from tests.sandbox.support import paystack_keys

    integration = integrations.by_secret_key(paystack_keys(app, accounts)[0])
    assert integration.webhook_url == app.config["PUBLIC_BASE_URL"] + "/api/payments/webhook"
    assert integration.business_name == "Demo Shop"
