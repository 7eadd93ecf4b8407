"""The isp API end to end: live app, Daraja simulator over real HTTP, worker running. Status is
asked of Daraja (STK query), at most once per payment per window however often storefronts poll."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.isp_support import add_package, queries_seen_by_daraja
from tests.conftest import wait_for
from tests.helpers import callbacks, events, payment_by_checkout_id


def poll_until(storefront, checkout_id, status: str, timeout=20.0) -> dict:
    def reached():
        body = storefront.status(checkout_id).json()
        return body if body["status"] == status else None

    return wait_for(reached, timeout=timeout, every=0.2, what=f"{checkout_id} to be {status}")


def test_a_paid_package_is_completed(app, storefront, accounts):
    checkout_id = storefront.initiate(phone="0712345678").json()["checkout_id"]
    body = poll_until(storefront, checkout_id, "completed")
    assert body["amount"] == accounts["isp"]["package_price"] and body["phone_number"] == "+254712345678"
    # The receipt comes with Daraja's callback. Under load the storefront's poll may settle the
    # payment first by an STK query, whose answer has no receipt; the callback then fills it in.
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).receipt, timeout=20, what="the callback's receipt")


def test_status_is_asked_of_daraja_when_no_callback_comes(app, storefront):
    """A phone ending 9999 pays but its callback is lost: only Daraja's answer to the query can tell."""
    app.config["STATUS_QUERY_EVERY"] = 0.2
    checkout_id = storefront.initiate(phone="0712349999").json()["checkout_id"]
    poll_until(storefront, checkout_id, "completed")
    assert callbacks(app, checkout_id) == []
    assert events(app, checkout_id)[-1] == ("processing", "completed", "query")
    assert queries_seen_by_daraja(app, checkout_id) >= 1


def test_a_cancelled_prompt_is_cancelled_by_daraja_s_answer(app, storefront):
    # the callback's first attempt is lost and its retry comes long after the test
    app.config.update(STATUS_QUERY_EVERY=0.2, SANDBOX_FAULT_CALLBACK_FAILS=1, SANDBOX_FAULT_CALLBACK_BACKOFF=600)
    checkout_id = storefront.initiate(phone="0712341032").json()["checkout_id"]
    poll_until(storefront, checkout_id, "cancelled")
    assert callbacks(app, checkout_id) == []
    assert events(app, checkout_id)[-1] == ("processing", "cancelled", "query")


@pytest.mark.parametrize(
    "phone,price,internal",
    [("0712342001", 50, "failed"), ("0712341037", 50, "timeout"), ("0712345678", 5000, "failed")],
)
def test_other_results_are_failed(app, storefront, accounts, phone, price, internal):
    """Wrong PIN (2001), unreachable (1037), insufficient balance (1): the document's "other codes"."""
    package_id = add_package(app, accounts["merchant"]["id"], price_kes=price)
    checkout_id = storefront.initiate(phone=phone, package_id=package_id).json()["checkout_id"]
    poll_until(storefront, checkout_id, "failed")
    assert payment_by_checkout_id(app, checkout_id).status == internal


def test_while_the_customer_has_not_answered_it_stays_pending(app, storefront):
    app.config.update(SANDBOX_CALLBACK_DELAY=60, STATUS_QUERY_EVERY=0.2)
    checkout_id = storefront.initiate().json()["checkout_id"]

    def asked_twice():
        storefront.status(checkout_id)
        return queries_seen_by_daraja(app, checkout_id) >= 2

    wait_for(asked_twice, every=0.3, what="Daraja to be asked twice")
    assert storefront.status(checkout_id).json()["status"] == "pending"
    assert payment_by_checkout_id(app, checkout_id).status == "processing"
    assert [e[1] for e in events(app, checkout_id)] == ["pending", "processing"]  # "being processed" moved nothing


def test_many_polls_ask_daraja_once_per_window(app, storefront):
    app.config.update(SANDBOX_CALLBACK_DELAY=60, STATUS_QUERY_EVERY=60)
    checkout_id = storefront.initiate().json()["checkout_id"]
    answers = [storefront.status(checkout_id).status_code for _ in range(15)]
    with ThreadPoolExecutor(12) as pool:  # and a burst at once, as a busy storefront's customers would
        answers += list(pool.map(lambda _: storefront.status(checkout_id).status_code, range(24)))
    assert answers == [200] * 39
    assert queries_seen_by_daraja(app, checkout_id) == 1

    app.config["STATUS_QUERY_EVERY"] = 0.5  # the next window: asked again, once

    def asked_again():
        assert storefront.status(checkout_id).json()["status"] == "pending"
        return queries_seen_by_daraja(app, checkout_id) == 2

    wait_for(asked_again, every=0.05, what="the next window's query")
    for _ in range(5):
        storefront.status(checkout_id)
    assert queries_seen_by_daraja(app, checkout_id) <= 3  # 5 polls within about a window: one more at most


def test_a_final_payment_is_answered_without_asking(app, storefront):
    app.config["STATUS_QUERY_EVERY"] = 0.01
    checkout_id = storefront.initiate(phone="0712345678").json()["checkout_id"]
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).status == "completed", what="the callback")
    asked = queries_seen_by_daraja(app, checkout_id)
    for _ in range(10):
        assert storefront.status(checkout_id).json()["status"] == "completed"
    assert queries_seen_by_daraja(app, checkout_id) == asked
