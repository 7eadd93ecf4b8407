"""Fixtures of the portal's page tests."""

import pytest


@pytest.fixture
def signed_in(client, auth, accounts):
    """The demo merchant signed in through the real form; its merchant id."""
    assert auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"]).status_code == 302
    return accounts["merchant"]["id"]
