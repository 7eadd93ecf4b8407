"""Fixtures of the simulator tests: a Daraja integration (sim) and a merchant's callback endpoint (receiver)."""

import pytest

from tests.sandbox.support import Receiver, Sim, merchant_credentials


@pytest.fixture
def sim(app, accounts, live_server) -> Sim:
    return Sim(live_server, *merchant_credentials(app, accounts))


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
