"""A merchant's journeys in a real browser: sign in, request a payment, watch it settle."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, payments_become, poll_now, screenshot, sign_in, signed_in
from tests.helpers import initiate


def test_sign_in_and_out(page, accounts):
    sign_in(page, accounts["merchant"])
    expect(page.get_by_role("heading", name="Demo Shop")).to_be_visible()
    expect(page.get_by_text("Sandbox: payments here are simulated")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_wrong_password_is_refused(page, accounts):
    page.goto("/login")
    page.get_by_label("Email").fill(accounts["merchant"]["email"])
    page.get_by_label("Password").fill("guess-again")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.goto("/payments")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_form_without_its_csrf_token_is_refused(page, accounts):
    page.goto("/login")
    page.locator('input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Email").fill(accounts["merchant"]["email"])
    page.get_by_label("Password").fill(accounts["merchant"]["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The form expired; please try again.")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_an_htmx_post_without_the_csrf_header_is_refused(page, accounts, app):
    signed_in(page, accounts["merchant"])
    page.goto("/payments/new")
    page.evaluate("document.body.removeAttribute('hx-headers')")
    page.locator('#new-payment-form input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Customer's phone").fill("0712345678")
    page.get_by_label("Amount (KES)").fill("100")
    with page.expect_response("**/payments/new") as answer:
        page.get_by_role("button", name="Send payment request").click()
    assert answer.value.status in (400, 303)
    with app.app_context():
        from portal.models import Payment

        assert Payment.query.count() == 0


def test_a_merchant_never_sees_another_merchants_payments(page, api, accounts):
    initiate(api, phone="254708374149", amount=321, account_reference="SECRET01")
    signed_in(page, accounts["other_merchant"])
    expect(page.get_by_role("heading", name="Other Shop")).to_be_visible()
    for path in ("/", "/payments", "/payments/new"):
        page.goto(path)
        expect(page.get_by_text("SECRET01")).to_have_count(0)
        expect(page.get_by_text("254708374149")).to_have_count(0)


def test_request_a_payment_and_watch_it_settle_without_a_reload(new_page, accounts, app):
    app.config["SANDBOX_CALLBACK_DELAY"] = 2
    page = new_page(clock=True)
    signed_in(page, accounts["merchant"])
    dashboard = new_page(clock=True)
    signed_in(dashboard, accounts["merchant"])

    page.goto("/payments/new")
    page.get_by_label("Customer's phone").fill("0712 345 678")
    page.get_by_label("Amount (KES)").fill("150")
    page.get_by_label("Account reference (optional)").fill("Table 4")
    page.get_by_role("button", name="Send payment request").click()
    row = page.locator("#recent-body tr").first
    expect(row).to_contain_text("Table 4")
    expect(row.locator(".status")).to_have_text(re.compile("processing|completed"))
    expect(page.get_by_label("Customer's phone")).to_have_value("")  # a fresh form for the next customer

    payments_become(app, "completed")  # M-Pesa's callback, 2 s later
    poll_now(dashboard)
    poll_now(page)
    latest = dashboard.locator("#latest tr", has_text="Table 4")
    expect(latest.locator(".status")).to_have_text("completed", timeout=20_000)
    expect(row.locator(".status")).to_have_text("completed", timeout=20_000)
    expect(row).to_contain_text(re.compile(r"[A-Z0-9]{10}"))  # the receipt


def test_request_form_explains_problems_next_to_the_field(page, accounts):
    signed_in(page, accounts["merchant"])
    page.goto("/payments/new")
    page.get_by_label("Customer's phone").fill("0730 123 456")
    page.get_by_label("Amount (KES)").fill("100")
    page.get_by_role("button", name="Send payment request").click()
    expect(page.locator("#phone-error")).to_contain_text("valid Safaricom number")
    expect(page.get_by_label("Customer's phone")).to_have_attribute("aria-invalid", "true")


def test_screenshots_of_the_dashboard_and_a_payment(new_page, api, accounts, app):
    checkout_id = initiate(api, phone="254708374149", amount=250, account_reference="Order123").json()["data"][
        "checkout_request_id"
    ]
    initiate(api, phone="254712341032", amount=80, account_reference="Order124")
    with app.app_context():
        from portal.models import Payment

        pid = Payment.query.filter_by(checkout_request_id=checkout_id).one().id
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport)
        signed_in(page, accounts["merchant"])
        expect(page.locator("#latest .status", has_text="completed").first).to_be_visible(timeout=20_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1  # no sideways scroll
        screenshot(page, f"dashboard-{label}")
        page.goto(f"/payments/{pid}")
        expect(page.get_by_text("processing → completed")).to_be_visible()
        screenshot(page, f"payment-{label}")
        page.goto("/payments")
        screenshot(page, f"payments-{label}")
