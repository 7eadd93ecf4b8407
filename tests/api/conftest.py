"""Fixtures of the API tests."""

import pytest

from tests.api.isp_support import Storefront
from tests.conftest import Api


@pytest.fixture
def storefront(live_server, accounts):
    """The demo merchant's active isp client with its package, calling over HTTP."""
    return Storefront(Api(live_server, None), accounts["isp"]["client_id"], accounts["isp"]["package_id"])


@pytest.fixture
def kiosk(live_server, accounts):
    """The demo merchant's STATION001, calling with its own key."""
    return Api(live_server, accounts["station"]["key"])


@pytest.fixture
def kiosk2(live_server, accounts):
    """The demo merchant's STATION002, calling with its own key."""
    return Api(live_server, accounts["station2"]["key"])
