"""Fixtures of the simulator tests: a Daraja integration (sim, business for C2B, B2C and Transaction
Status), a Paystack one (paystack, other_paystack; hooks for its webhooks) and a merchant's
callback endpoint (receiver)."""

import pytest

from tests.sandbox.support import (
    Business,
    Paystack,
    Receiver,
    Sim,
    merchant_credentials,
    merchant_initiator,
    paystack_keys,
    set_paystack_webhook,
)


@pytest.fixture
def sim(app, accounts, live_server) -> Sim:
    return Sim(live_server, *merchant_credentials(app, accounts))


@pytest.fixture
def business(app, accounts, live_server) -> Business:
    """The demo merchant's app and initiator, talking to the simulator's C2B, B2C and Transaction Status."""
    return Business(live_server, *merchant_credentials(app, accounts), merchant_initiator(app, accounts))


@pytest.fixture
def other_business(app, accounts, live_server) -> Business:
    return Business(
        live_server,
        *merchant_credentials(app, accounts, "other_merchant"),
        merchant_initiator(app, accounts, "other_merchant"),
    )


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def paystack(app, accounts, live_server) -> Paystack:
    """The demo merchant's Paystack integration, talking to the simulator."""
    return Paystack(live_server, paystack_keys(app, accounts)[0])


@pytest.fixture
def other_paystack(app, accounts, live_server) -> Paystack:
    return Paystack(live_server, paystack_keys(app, accounts, "other_merchant")[0])


@pytest.fixture
def hooks(app, paystack, receiver) -> Receiver:
    """The receiver as the demo integration's webhook URL (its dashboard setting), with Paystack's
    hourly retries shortened to a tenth of a second."""
    app.config["SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY"] = 0.1
    set_paystack_webhook(app, paystack.key, receiver.at("/paystack/webhook"))
    return receiver
