"""A parent pays a booking at the simulated Paystack checkout; the merchant sees it held on /escrow,
releases part of it to the teacher after reviewing what is paid and what kept, and watches the
release settle without reloading the page."""

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Merchant
from portal.services.paystack import charges
from tests.browser.conftest import PHONE, poll_now, screenshot, signed_in
from tests.conftest import wait_for
from tests.escrow_support import escrow_of


def test_a_booking_paid_at_the_checkout_is_held_then_released(new_page, app, live_server, accounts):
    app.config["SANDBOX_CALLBACK_DELAY"] = 2.0  # Paystack settles the transfer after a while: "releasing" is seen
    with app.app_context():
        started = charges.start_checkout(
            db.session.get(Merchant, accounts["merchant"]["id"]),
            api="bookings",
            reference="bk-browser-journey",
            amount=150000,
            email="parent@example.com",
            meta={"bookingId": "booking_browser"},
        )
        checkout_url, payment_id = started.authorization_url, started.payment.id

    parent = new_page(PHONE)
    parent.goto(checkout_url)
    expect(parent.get_by_text("Pay KES 1,500.00")).to_be_visible()
    parent.get_by_role("button", name="Pay by card").click()
    expect(parent.get_by_role("heading", name="Payment successful")).to_be_visible()

    page = new_page(clock=True)
    signed_in(page, accounts["merchant"])
    wait_for(lambda: escrow_of(app, payment_id), timeout=20, what="the booking to be held")
    page.get_by_role("link", name="Escrow").click()
    expect(page.get_by_role("heading", name="Escrow", exact=True)).to_be_visible()
    row = page.locator("#escrows tbody tr").filter(has_text="booking_browser")
    expect(row.locator(".status")).to_have_text("held")
    expect(row).to_contain_text("KES 1,500.00")
    page.evaluate("window.sameDocument = true")  # gone if anything below reloads the page
    screenshot(page, "escrow-held")

    row.get_by_role("link", name="Release").click()
    panel = page.locator("#escrow-panel")
    expect(panel.get_by_role("heading", name="Release booking booking_browser")).to_be_visible()
    expect(page.get_by_label("Amount to pay (KES)")).to_have_value("1500")
    page.get_by_label("Teacher's M-Pesa number").fill("0712 345 678")
    page.get_by_label("Amount to pay (KES)").fill("1,600")
    page.get_by_role("button", name="Review release").click()
    expect(panel.get_by_role("alert")).to_contain_text("more than the KES 1,500 held")
    page.get_by_label("Amount to pay (KES)").fill("1,200")
    page.get_by_role("button", name="Review release").click()
    expect(panel.get_by_role("heading", name="Check the release of booking booking_browser")).to_be_visible()
    expect(panel.locator('[data-fact="amount"]')).to_have_text("KES 1,200.00")
    expect(panel.locator('[data-fact="phone"]')).to_have_text("254712345678")
    expect(panel.locator('[data-fact="kept"]')).to_have_text("KES 300.00")
    expect(panel.locator('[data-fact="rail"]')).to_have_text("Paystack transfer to M-Pesa")
    screenshot(page, "escrow-review")

    panel.get_by_role("button", name="Pay KES 1,200.00").click()
    expect(page.get_by_role("status").filter(has_text="Releasing booking booking_browser")).to_be_visible()
    status = page.locator("#escrows tbody tr").filter(has_text="booking_browser").locator(".status").first
    expect(status).to_have_text("releasing")
    wait_for(lambda: escrow_of(app, payment_id).status == "released", timeout=30, what="Paystack's transfer result")
    poll_now(page)
    expect(status).to_have_text("released", timeout=30_000)  # the row polled itself
    released = page.locator("#escrows tbody tr").filter(has_text="booking_browser")
    expect(released).to_contain_text("KES 1,200.00 paid, KES 300.00 kept")
    expect(released.get_by_role("link", name="Release")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, "escrow-released")

    narrow = new_page(PHONE)
    signed_in(narrow, accounts["merchant"])
    narrow.goto("/escrow")
    expect(narrow.locator("#escrows tbody tr").filter(has_text="booking_browser")).to_contain_text("released")
    screenshot(narrow, "escrow-phone")
