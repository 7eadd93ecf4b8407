"""The bookings document's test-mode rules hold only against Paystack's own test environment: a
sk_test_ key at api.paystack.co gets the forced phone, email and amounts; the simulator, and a
live key, get what was asked."""

import pytest

from portal.providers.paystack import LIVE_URL, PaystackClient
from portal.services.paystack import charges
from portal.services.paystack.charges import TEST_EMAIL, TEST_PHONE, paystack_test_rules


def client(key: str, base: str = LIVE_URL) -> PaystackClient:
    return PaystackClient(key, base)


@pytest.mark.parametrize("kes", [100, 500, 1000])
def test_paystacks_test_environment_forces_its_phone_and_email(kes):
    assert paystack_test_rules(client("sk_test_abc"), kes * 100, "254712345678", "me@example.com") == (
        TEST_PHONE,
        TEST_EMAIL,
    )
    assert paystack_test_rules(client("sk_test_abc"), kes * 100, None, "me@example.com") == (None, TEST_EMAIL)


@pytest.mark.parametrize("minor", [5000, 15000, 100050, 110000, 300])
def test_paystacks_test_environment_takes_only_its_amounts(minor):
    with pytest.raises(charges.TestModeRefused, match="100, 200"):
        paystack_test_rules(client("sk_test_abc"), minor, "254712345678", "me@example.com")


@pytest.mark.parametrize(
    "key, base", [("sk_live_abc", LIVE_URL), ("sk_test_abc", "http://127.0.0.1:5000/sandbox/paystack")]
)
def test_a_live_key_or_the_simulator_gets_what_was_asked(key, base):
    assert paystack_test_rules(client(key, base), 1234, "254712345678", "me@example.com") == (
        "254712345678",
        "me@example.com",
    )
