"""A merchant sends a payout from /payouts in a real browser: fills it in, reviews it (with the
name the customer will see), sends it and watches it settle, and sees a customer's C2B payment
arrive, all without reloading the page; the page fits a phone."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, payments_become, poll_now, screenshot, signed_in


def test_send_a_payout_and_watch_it_settle_and_a_receipt_arrive(new_page, app, api, accounts):
    app.config["SANDBOX_CALLBACK_DELAY"] = 3.0  # M-Pesa answers after a while: the row is seen before it settles
    page = new_page(clock=True)
    signed_in(page, accounts["merchant"])
    page.get_by_role("link", name="Payouts").click()
    expect(page.get_by_role("heading", name="Payouts", exact=True)).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if anything below reloads the page

    page.get_by_label("Recipient's phone").fill("0712 345 678")
    page.get_by_label("Amount (KES)").fill("5")
    page.get_by_label("What it is for").fill("Refund for order 42")
    page.get_by_role("button", name="Review payout").click()
    expect(page.locator("#amount-error")).to_have_text("M-Pesa pays out from 10 to 250,000 shillings at a time.")

    page.get_by_label("Amount (KES)").fill("1,500")
    page.get_by_role("button", name="Review payout").click()
    review = page.locator("#payout-form")
    expect(review.get_by_role("heading", name="Check the payout")).to_be_visible()
    expect(review.locator('[data-fact="payee-sees"]')).to_have_text("Demo Shop")
    review.get_by_role("button", name="Change").click()  # back to the form, as filled in
    expect(page.get_by_label("Amount (KES)")).to_have_value("1500")
    page.get_by_role("button", name="Review payout").click()
    expect(review.locator('[data-fact="amount"]')).to_have_text("KES 1,500.00")
    expect(review.locator('[data-fact="phone"]')).to_have_text("254712345678")
    expect(review.locator('[data-fact="remarks"]')).to_have_text("Refund for order 42")
    expect(review.locator('[data-fact="payee-sees"]')).to_have_text("Demo Shop")
    screenshot(page, "payouts-review")

    review.get_by_role("button", name="Send KES 1,500.00").click()
    expect(page.get_by_role("status").filter(has_text="queued")).to_contain_text("KES 1,500.00 to 254712345678")
    row = page.locator("#payouts tbody tr").first
    status = row.locator("[data-status]")
    expect(status).to_have_text(re.compile("^(queued|sent)$"))
    screenshot(page, "payouts-sent")
    payments_become(app, "completed")  # M-Pesa's result, 3 s later
    poll_now(page)
    expect(status).to_have_text("completed", timeout=30_000)  # the row polled itself
    expect(row.locator('[data-label="Receipt"]')).to_have_text(re.compile(r"^[A-Z0-9]{10}$"))
    expect(page.get_by_label("Recipient's phone")).to_have_value("")  # a fresh form for the next one

    app.config["SANDBOX_CALLBACK_DELAY"] = 0.0  # nothing is looked at before the customer's payment arrives
    registered = api.post("/api/mpesa/c2b/register", json={"responseType": "Completed"})
    assert registered.status_code == 200, registered.text
    paid = api.post("/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 75, "billRefNumber": "Inv7"})
    assert paid.status_code == 200, paid.text
    payments_become(app, "completed", "completed")
    poll_now(page)
    receipt = page.locator("#receipts tbody tr").filter(has_text="Inv7")
    expect(receipt).to_contain_text("KES 75.00", timeout=20_000)  # the section refreshed itself
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, "payouts-desktop")

    narrow = new_page(PHONE)
    signed_in(narrow, accounts["merchant"])
    narrow.goto("/payouts")
    expect(narrow.locator("#payouts [data-status]").first).to_have_text("completed")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # no sideways scroll
    screenshot(narrow, "payouts-phone")
