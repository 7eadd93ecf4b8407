"""Fixtures of the simulator tests: a Daraja integration (sim, business for C2B, B2C and Transaction
Status) and a merchant's callback endpoint (receiver)."""

import pytest

from tests.sandbox.support import Business, Receiver, Sim, merchant_credentials, merchant_initiator


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
