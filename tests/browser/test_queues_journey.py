"""A merchant retries a failed job from the queues page in a real browser and watches it
resolve without a reload; the page fits a phone."""

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import DeadLetter
from tests.browser.conftest import PHONE, poll_now, screenshot, signed_in
from tests.conftest import wait_for
from tests.helpers import failed_stk_query


def resolved(app, dead_letter_id: int) -> bool:
    with app.app_context():
        return db.session.get(DeadLetter, dead_letter_id).status == "resolved"


def test_retry_a_failed_job_from_the_queues_page_and_see_it_resolved(new_page, api, accounts, app):
    dead_letter_id, payment_id = failed_stk_query(app, api)  # Daraja answered every query with HTTP 500
    page = new_page(clock=True)
    signed_in(page, accounts["merchant"])
    page.get_by_role("link", name="Queues").click()
    expect(page.get_by_role("heading", name="Queues and failed jobs")).to_be_visible()

    row = page.locator(f"#dead-letter-{dead_letter_id}")
    expect(row).to_contain_text("Ask M-Pesa for the result of an STK push")
    expect(row).to_contain_text("DarajaError: 500.003.1001: Internal Server Error")
    expect(row.locator("[data-status]")).to_have_text("failed")
    unresolved = page.locator('[data-figure="unresolved"]')
    expect(unresolved).to_have_text("1")
    screenshot(page, "queues-desktop")

    app.config["SANDBOX_FAULT_API_500"] = 0  # the cause is fixed: Daraja answers again
    row.get_by_role("button", name=f"Retry job {dead_letter_id}").click()
    wait_for(lambda: resolved(app, dead_letter_id), what="the retry to run")
    poll_now(page)
    expect(row.locator("[data-status]")).to_have_text("resolved", timeout=20_000)  # the row polled itself
    expect(row).to_contain_text("retried 1×")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(unresolved).to_have_text("0", timeout=20_000)  # and the figures followed

    page.goto(f"/payments/{payment_id}")  # the retried query settled the payment
    expect(page.locator("#payment-detail [data-status]").first).to_have_text("completed")

    narrow = new_page(PHONE)
    signed_in(narrow, accounts["merchant"])
    narrow.goto("/queues")
    expect(narrow.locator(f"#dead-letter-{dead_letter_id} [data-status]")).to_have_text("resolved")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # no sideways scroll
    screenshot(narrow, "queues-phone")
