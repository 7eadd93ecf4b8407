"""Fixtures of the API tests."""

import pytest

from tests.api.isp_support import Storefront
from tests.conftest import Api


@pytest.fixture
def storefront(live_server, accounts):
    """The demo merchant's active isp client with its package, calling over HTTP."""
    return Storefront(Api(live_server, None), accounts["isp"]["client_id"], accounts["isp"]["package_id"])
