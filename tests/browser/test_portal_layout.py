"""The portal on a phone (390 px) and a desktop (1280 px): nothing scrolls sideways, rows read
as cards on the phone, a long key name wraps, the figures follow the payments live, the Copy
button works under the Content-Security-Policy, and the policy really is watched."""

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.timeutil import utcnow
from tests.browser.conftest import (
    CSP_WORDS,
    DESKTOP,
    PHONE,
    payments_become,
    poll_now,
    screenshot,
    screenshot_path,
    signed_in,
    watch_csp,
)
from tests.helpers import initiate
from tests.web.test_payments_pages import add

LONG_NAME = "x" * 80  # the longest name the form takes, with nowhere to break

OVERFLOW = """() => {
  const doc = document.scrollingElement;
  const wide = [...document.querySelectorAll('.card, table, tr, td, .stats')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'table-row')
    .map(e => e.id || e.tagName + '.' + e.className);
  return {page: doc.scrollWidth - doc.clientWidth, wide};
}"""
OUTSIDE = """(width) => [...document.querySelectorAll('main *')]
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > width + 1 || r.left < -1); })
  .map(e => e.id || e.tagName + '.' + e.className)"""
LINES = """(selector) => [...document.querySelectorAll(selector)].map(e => {
  const range = document.createRange(); range.selectNodeContents(e); return range.getClientRects().length; })"""


def assert_fits(page, viewport, what):
    overflow = page.evaluate(OVERFLOW)
    assert overflow == {"page": 0, "wide": []}, f"{what} scrolls sideways: {overflow}"
    assert page.evaluate(OUTSIDE, viewport["width"]) == [], f"{what} has content off-screen"


def test_no_page_scrolls_sideways_on_a_phone_or_a_desktop(new_page, api, accounts, app):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60  # the second push to this phone is refused: customer busy
    initiate(api, phone="254708374149", amount=250, account_reference="Order123")
    initiate(api, phone="254712345678", amount=1250, account_reference="Order124")
    initiate(api, phone="254712345678", amount=80, account_reference="Busy1")
    # Earlier days for the chart: its bars carry their values, up to a quarter of a million.
    now = utcnow()
    amounts = [125_000, 1_250_000, 95_000, 25_000_000, 4_000_000, 0, 3_300_000]
    add(
        app,
        accounts["merchant"]["id"],
        len(amounts),
        amount=lambda i: amounts[i] or 100,
        status=lambda i: "completed" if amounts[i] else "failed",
        created_at=lambda i: now - timedelta(days=i + 1),
    )
    with app.app_context():
        from portal.models import Payment

        pid = Payment.query.filter_by(account_reference="Order123").one().id
        refused_id = Payment.query.filter_by(account_reference="Busy1").one().id
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport)
        signed_in(page, accounts["merchant"])
        if label == "desktop":
            page.goto("/keys")
            page.get_by_label("Key name").fill(LONG_NAME)
            page.get_by_role("button", name="Create key").click()
            expect(page.locator("#key-list")).to_contain_text(LONG_NAME)
        for name, path in (
            ("dashboard", "/"),
            ("ledger", "/payments"),
            ("keys", "/keys"),
            ("payment", f"/payments/{pid}"),
            ("request", "/payments/new"),
            ("not-found", "/no-such-page"),
        ):
            page.goto(path)
            page.wait_for_load_state("load")
            assert_fits(page, viewport, f"{name} at {viewport['width']} px")
            screenshot(page, f"layout-{name}-{label}")
        page.goto(f"/payments/{refused_id}")
        expect(page.locator(".refusal")).to_contain_text("already had another M-Pesa prompt open")
        expect(page.locator(".facts")).to_contain_text("Unable to lock subscriber")
        assert_fits(page, viewport, f"refused payment at {viewport['width']} px")
        screenshot(page, f"layout-refused-{label}")
        page.goto("/")
        expect(page.locator("#figures .value")).to_have_text(["33k", "40k", "250k", "950", "12.5k", "1.3k"])
        expect(page.locator("#figures .tick")).to_have_text(["KES 0", "KES 100k", "KES 200k", "KES 300k"])
        chart = page.locator("svg.chart")
        labels = page.evaluate("() => [...document.querySelectorAll('svg.chart text')].map(t => t.getBBox().x)")
        assert min(labels) >= 0  # no label runs off the chart's left edge
        chart.screenshot(path=screenshot_path(f"layout-chart-{label}"))
        page.goto("/payments")
        busy = page.locator("#ledger-body tr", has_text="Busy1")
        expect(busy.locator(".status")).to_have_text("refused")
        expect(busy).to_contain_text("Customer busy with another prompt")
        assert set(page.evaluate(LINES, "#ledger-body td.customer")) == {1}  # phone numbers never break
        page.goto("/keys")
        revoke = page.get_by_role("button", name=f"Revoke key {LONG_NAME}")
        box = revoke.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]  # reachable, no scrolling
        if label == "phone":
            page.goto("/")
            card = page.locator("#latest tr", has_text="Order124")
            expect(card.locator("td[data-label='Customer']")).to_have_text("254712345678")
            assert card.evaluate("e => getComputedStyle(e).display") == "block"  # a card, not a squeezed row
            badge = card.locator(".status").bounding_box()
            row = card.bounding_box()
            assert badge["x"] + badge["width"] <= row["x"] + row["width"]  # the badge is whole


def test_the_dashboard_figures_follow_new_payments_without_a_reload(new_page, api, accounts, app):
    page = new_page(clock=True)
    signed_in(page, accounts["merchant"])
    today = page.locator("#figures .stat .big").first
    expect(today).to_have_text("KES 0.00")
    expect(page.locator("#figures .tick")).to_have_text(["KES 0"])
    initiate(api, phone="254708374149", amount=250, account_reference="Order125")
    payments_become(app, "completed")
    poll_now(page)
    expect(today).to_have_text("KES 250.00", timeout=20_000)
    expect(page.locator("#figures .value")).to_have_text(["250"])
    expect(page.locator("#figures .tick").last).to_have_text("KES 300")
    expect(page.locator("#figures")).to_contain_text("100% successful")
    screenshot(page, "dashboard-figures-live")


def test_the_copy_button_copies_the_new_key(page, accounts, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    signed_in(page, accounts["merchant"])
    page.goto("/keys")
    page.get_by_label("Key name").fill("Till 2")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").input_value()
    assert key.startswith("mpk_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key


def test_the_policy_watch_sees_an_inline_script(browser, live_server):
    """The guard in new_page must be able to fail: served under our policy, inline script is refused and reported."""
    context = browser.new_context(base_url=live_server)
    try:
        page = context.new_page()
        violations = []
        watch_csp(page, violations)
        policy = page.request.get(f"{live_server}/login").headers["content-security-policy"]
        page.route(
            re.compile(r".*/inline-probe$"),
            lambda route: route.fulfill(
                status=200,
                content_type="text/html",
                headers={"Content-Security-Policy": policy},
                body="<!doctype html><p id=p>before</p><script>document.getElementById('p').textContent='ran'</script>",
            ),
        )
        page.goto("/inline-probe")
        expect(page.locator("#p")).to_have_text("before")
        page.wait_for_function("true")
        assert violations and CSP_WORDS in violations[0]
    finally:
        context.close()
