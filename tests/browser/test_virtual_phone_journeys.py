"""The whole sandbox journey in a browser: the merchant asks, the customer answers on the
virtual phone, the merchant's pages settle without a reload."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, payments_become, poll_now, reaches_the_phone, screenshot, signed_in

CUSTOMER = "254712345678"


def request_payment(page, amount="100", reference="Table 7"):
    page.goto("/payments/new")
    page.get_by_label("Customer's phone").fill("0712 345 678")
    page.get_by_label("Amount (KES)").fill(amount)
    page.get_by_label("Account reference (optional)").fill(reference)
    page.get_by_role("button", name="Send payment request").click()
    expect(page.locator("#recent-body tr").first).to_contain_text(reference)


def open_phone_and_dashboard(new_page, accounts, viewport=PHONE):
    phone = new_page(viewport, clock=True)
    phone.goto(f"/sandbox/phone/{CUSTOMER}")  # open before the push: the number is attended
    expect(phone.get_by_text("No messages")).to_be_visible()
    merchant = new_page(clock=True)
    signed_in(merchant, accounts["merchant"])
    dashboard = new_page(clock=True)
    signed_in(dashboard, accounts["merchant"])
    return phone, merchant, dashboard


def test_paying_on_the_virtual_phone_settles_the_dashboard_row_live(app, new_page, accounts):
    phone, merchant, dashboard = open_phone_and_dashboard(new_page, accounts)
    request_payment(merchant)
    poll_now(dashboard)
    row = dashboard.locator("#latest tr", has_text="Table 7")
    expect(row.locator(".status")).to_have_text("processing")

    reaches_the_phone(app, phone, CUSTOMER)
    expect(phone.get_by_text("Pay KES 100 to DEMO SHOP?")).to_be_visible()
    screenshot(phone, "virtual-phone-prompt-phone")
    phone.get_by_label("Enter M-PESA PIN").fill("1234")
    phone.get_by_role("button", name="OK").click()
    expect(phone.get_by_text("Confirmed.")).to_be_visible()

    payments_become(app, "completed")  # M-Pesa's callback reached the gateway
    poll_now(dashboard)
    poll_now(merchant)
    expect(row.locator(".status")).to_have_text("completed", timeout=20_000)  # the same page, never reloaded
    receipt = re.search(r"[A-Z0-9]{10}", phone.locator(".phone-message strong").first.inner_text()).group(0)
    expect(row).to_contain_text(receipt)
    expect(merchant.locator("#recent-body tr", has_text="Table 7").locator(".status")).to_have_text("completed")
    screenshot(phone, "virtual-phone-confirmed-phone")


def test_cancelling_on_the_virtual_phone_shows_cancelled(app, new_page, accounts):
    phone, merchant, dashboard = open_phone_and_dashboard(new_page, accounts)
    request_payment(merchant, amount="250", reference="Table 8")
    reaches_the_phone(app, phone, CUSTOMER)
    expect(phone.get_by_text("Pay KES 250 to DEMO SHOP?")).to_be_visible()
    phone.get_by_role("button", name="Cancel").click()
    expect(phone.get_by_text("Request cancelled")).to_be_visible()
    payments_become(app, "cancelled")
    poll_now(dashboard)
    row = dashboard.locator("#latest tr", has_text="Table 8")
    expect(row.locator(".status")).to_have_text("cancelled", timeout=20_000)


def test_the_payment_page_links_to_the_customers_phone(new_page, accounts):
    merchant = new_page()
    signed_in(merchant, accounts["merchant"])
    request_payment(merchant, reference="Table 9")
    merchant.locator("#recent-body tr", has_text="Table 9").get_by_role("link").click()
    with merchant.context.expect_page() as opened:
        merchant.get_by_role("link", name="Open the customer's virtual phone").click()
    phone = opened.value
    expect(phone).to_have_url(re.compile(f"/sandbox/phone/{CUSTOMER}$"))


def test_screenshots_of_the_virtual_phone(new_page, accounts):
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        phone = new_page(viewport)
        phone.goto(f"/sandbox/phone/{CUSTOMER}")
        expect(phone.locator("#phone-screen")).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
        screenshot(phone, f"virtual-phone-{label}")
