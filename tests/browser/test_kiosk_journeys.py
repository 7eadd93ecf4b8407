"""The water kiosk in a browser, at the two kiosk sizes: paired with a station's key, a customer
buys water by touch (800×480) and by keyboard (1280×800), pays on the virtual phone, reads the
code from the phone's SMS, types it on the kiosk and watches it dispense; wrong codes, a
cancelled payment, refused keys, unpairing and an abandoned screen. Every screen must fit the
display without scrolling.

The kiosk's own timers (its looks at the payment, the simulated meter, the closing screens, the
abandoned screen) run on Playwright's clock: it goes at the real pace, and the test moves it on
wherever the kiosk would otherwise keep it waiting, once what the kiosk waits for has happened."""

import re

from playwright.sync_api import expect

from portal.extensions import limiter
from portal.services import stations
from tests.browser.conftest import PHONE, payments_become, reaches_the_phone, screenshot
from tests.conftest import Api, wait_for

SMALL = {"width": 800, "height": 480}
LARGE = {"width": 1280, "height": 800}
CUSTOMER = "254712345678"  # pays on the virtual phone when someone answers there
SLOW = 30_000  # ms: waits that cross the worker, the simulators and the kiosk's polls on a busy machine
LONGEST_LOOK = 15_000  # ms: the longest the kiosk waits between two looks at a payment (POLLS in kiosk.js)


def fits(page) -> None:
    size = page.evaluate(
        "() => ({width: document.scrollingElement.scrollWidth, height: document.scrollingElement.scrollHeight,"
        " innerWidth, innerHeight})"
    )
    assert size["width"] <= size["innerWidth"] and size["height"] <= size["innerHeight"], f"scrolls: {size}"


def shot(page, name: str) -> None:
    fits(page)
    size = page.viewport_size
    screenshot(page, f"kiosk-{name}-{size['width']}x{size['height']}")


def open_kiosk(new_page, viewport, code="STATION001", **options):
    page = new_page(viewport, clock=True, **options)  # its own clock, moved on by the test
    page.goto(f"/kiosk/{code}")
    return page


def next_look(kiosk) -> None:
    """The kiosk's next look at the payment, now: call it once the payment has settled."""
    kiosk.clock.fast_forward(LONGEST_LOOK)


def poured(kiosk, app, liters: int) -> None:
    """The simulated meter's pulses for `liters`, at KIOSK_FLOW_LITERS_PER_SECOND, all counted."""
    kiosk.clock.fast_forward(round(liters / app.config["KIOSK_FLOW_LITERS_PER_SECOND"] * 1000))


def closed(kiosk, app) -> None:
    """A closing screen (thanks, a notice) left alone for KIOSK_IDLE_RETURN_SECONDS."""
    kiosk.clock.fast_forward(round(app.config["KIOSK_IDLE_RETURN_SECONDS"] * 1000))


def pair(page, key: str) -> None:
    page.get_by_label("Station key").fill(key)
    page.get_by_role("button", name="Pair").click()


def idle(page):
    return page.get_by_role("button", name="Tap to buy water")


def tap_digits(page, digits: str) -> None:
    for digit in digits:
        page.get_by_role("button", name=digit, exact=True).tap()


def open_phone(new_page):
    """The customer's virtual phone, open before the push (so the prompt waits for the PIN)."""
    phone = new_page(PHONE, clock=True)
    phone.goto(f"/sandbox/phone/{CUSTOMER}")
    expect(phone.get_by_text("No messages")).to_be_visible()
    return phone


def approve(app, phone, amount: int) -> None:
    reaches_the_phone(app, phone, CUSTOMER)
    expect(phone.get_by_text(f"Pay KES {amount} to DEMO SHOP?")).to_be_visible(timeout=SLOW)
    phone.get_by_label("Enter M-PESA PIN").fill("1234")
    phone.get_by_role("button", name="OK").click()


def code_from_sms(app, phone) -> tuple[str, str]:
    """The code and the payment's reference, as the SMS on the virtual phone gives them."""
    reaches_the_phone(app, phone, CUSTOMER, sms=True)
    sms = phone.locator(".sms-text", has_text="Your water code is")
    expect(sms).to_be_visible(timeout=SLOW)
    text = sms.inner_text()
    return re.search(r"\b(\d{6})\b", text).group(1), re.search(r"\((WS-[0-9A-Z-]+)\)", text).group(1)


def otp_prompt(page):
    return page.get_by_label("Enter the 6-digit code sent to 07xx xxx 678")


def test_a_sale_by_touch_at_800x480(app, new_page, accounts, live_server):
    phone = open_phone(new_page)
    kiosk = open_kiosk(new_page, SMALL, has_touch=True)
    asked = []
    kiosk.on("request", lambda r: asked.append(r.url) if "/api/" in r.url else None)
    expect(kiosk.get_by_role("heading", name="Pair this kiosk with station STATION001")).to_be_visible()
    shot(kiosk, "pair")
    pair(kiosk, accounts["station"]["key"])
    expect(idle(kiosk)).to_be_visible()
    expect(kiosk.locator("#idle-price")).to_have_text("KES 5 a liter")
    expect(kiosk.locator("#station-name")).to_have_text("Demo station 1")
    shot(kiosk, "idle")

    idle(kiosk).tap()
    tap_digits(kiosk, "0712345679")
    kiosk.get_by_role("button", name="Delete").tap()
    tap_digits(kiosk, "8")
    expect(kiosk.get_by_label("Your M-Pesa phone number")).to_have_value("0712345678")
    shot(kiosk, "phone")
    kiosk.get_by_role("button", name="Next").tap()
    tap_digits(kiosk, "52")
    expect(kiosk.get_by_label("Amount to pay (KES)")).to_have_value("52")
    expect(kiosk.locator("#amount-hint")).to_have_text("KES 5 a liter · from KES 5 to KES 10,000")
    shot(kiosk, "amount")
    kiosk.get_by_role("button", name="See liters").tap()

    expect(kiosk.get_by_role("heading", name="KES 50 → 10 liters")).to_be_visible()
    expect(kiosk.locator("#preview-rounding")).to_have_text(
        "KES 2 less than the KES 52 you entered: water is sold in whole liters, KES 5 a liter."
    )
    expect(kiosk.locator("#preview-phone")).to_have_text("0712 345 678")
    shot(kiosk, "preview")
    kiosk.get_by_role("button", name="Pay KES 50 with M-Pesa").tap()
    expect(kiosk.get_by_role("heading", name="Check your phone and enter your M-Pesa PIN")).to_be_visible()
    shot(kiosk, "paying")

    approve(app, phone, 50)
    code, reference = code_from_sms(app, phone)  # sent once the payment completed
    screenshot(phone, "kiosk-sale-virtual-phone-sms")
    next_look(kiosk)
    expect(otp_prompt(kiosk)).to_be_visible(timeout=SLOW)
    shot(kiosk, "code")
    tap_digits(kiosk, code)
    kiosk.get_by_role("button", name="OK").tap()

    expect(kiosk.get_by_role("heading", name="Dispensing 10 L")).to_be_visible()
    kiosk.wait_for_function("() => document.getElementById('dispensing-progress').value > 0")
    expect(kiosk.get_by_role("progressbar")).to_be_visible()
    shot(kiosk, "dispensing")
    poured(kiosk, app, 10)
    expect(kiosk.get_by_role("heading", name="Thank you")).to_be_visible(timeout=SLOW)
    expect(kiosk.locator("#thanks-text")).to_have_text("Enjoy your 10 L of water.")
    shot(kiosk, "thanks")
    closed(kiosk, app)
    expect(idle(kiosk)).to_be_visible()  # back to idle by itself

    state = Api(live_server, accounts["merchant"]["api_key"]).get(f"/api/otp/status/{reference}").json()["data"]
    assert (state["status"], state["liters"]) == ("used", 10)
    assert len(asked) <= 20, asked  # pairing and a whole sale, far inside 100 requests per 15 minutes


def test_a_sale_by_keyboard_alone_at_1280x800(app, new_page, accounts, live_server):
    phone = open_phone(new_page)
    kiosk = open_kiosk(new_page, LARGE)
    expect(kiosk.get_by_label("Station key")).to_be_focused()
    kiosk.keyboard.type(accounts["station"]["key"])
    kiosk.keyboard.press("Enter")
    expect(idle(kiosk)).to_be_focused()
    shot(kiosk, "idle")

    kiosk.keyboard.press("Enter")
    phone_number = kiosk.get_by_label("Your M-Pesa phone number")
    expect(phone_number).to_be_focused()
    kiosk.keyboard.type("071234")
    kiosk.keyboard.press("Escape")  # the customer walks away: back to idle, nothing kept
    expect(idle(kiosk)).to_be_focused()
    kiosk.keyboard.press("0")  # a digit on idle starts a sale with it
    kiosk.keyboard.type("71234569")
    kiosk.keyboard.press("Backspace")
    kiosk.keyboard.type("78")
    expect(phone_number).to_have_value("0712345678")
    shot(kiosk, "phone")
    kiosk.keyboard.press("Enter")
    expect(kiosk.get_by_label("Amount to pay (KES)")).to_be_focused()
    kiosk.keyboard.type("50")
    shot(kiosk, "amount")
    kiosk.keyboard.press("Enter")
    expect(kiosk.get_by_role("heading", name="KES 50 → 10 liters")).to_be_visible()
    expect(kiosk.locator("#preview-rounding")).to_have_text("")  # nothing rounded
    pay = kiosk.get_by_role("button", name="Pay KES 50 with M-Pesa")
    expect(pay).to_be_focused()
    shot(kiosk, "preview")
    kiosk.keyboard.press("Enter")
    expect(kiosk.get_by_role("heading", name="Check your phone and enter your M-Pesa PIN")).to_be_visible()
    shot(kiosk, "paying")

    approve(app, phone, 50)
    code, reference = code_from_sms(app, phone)
    next_look(kiosk)
    expect(otp_prompt(kiosk)).to_be_focused(timeout=SLOW)
    kiosk.keyboard.type(code)
    shot(kiosk, "code")
    kiosk.keyboard.press("Enter")
    expect(kiosk.get_by_role("heading", name="Dispensing 10 L")).to_be_visible()
    shot(kiosk, "dispensing")
    poured(kiosk, app, 10)
    expect(kiosk.get_by_role("heading", name="Thank you")).to_be_visible(timeout=SLOW)
    shot(kiosk, "thanks")
    closed(kiosk, app)
    expect(idle(kiosk)).to_be_focused()
    state = Api(live_server, accounts["merchant"]["api_key"]).get(f"/api/otp/status/{reference}").json()["data"]
    assert state["status"] == "used"


def test_wrong_codes_show_the_attempts_left_then_the_code_is_blocked(app, new_page, accounts, live_server):
    phone = open_phone(new_page)
    kiosk = open_kiosk(new_page, SMALL, has_touch=True)
    pair(kiosk, accounts["station"]["key"])
    idle(kiosk).tap()
    tap_digits(kiosk, "0712345678")
    kiosk.get_by_role("button", name="Next").tap()
    tap_digits(kiosk, "50")
    kiosk.get_by_role("button", name="See liters").tap()
    kiosk.get_by_role("button", name="Pay KES 50 with M-Pesa").tap()
    approve(app, phone, 50)
    code, reference = code_from_sms(app, phone)
    next_look(kiosk)
    expect(otp_prompt(kiosk)).to_be_visible(timeout=SLOW)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    message = kiosk.locator("#otp-message")
    for left in ("2 attempts", "1 attempt"):
        tap_digits(kiosk, wrong)
        kiosk.get_by_role("button", name="OK").tap()
        expect(message).to_have_text(f"Wrong code — {left} left")
        expect(otp_prompt(kiosk)).to_have_value("")
    shot(kiosk, "wrong-code")
    tap_digits(kiosk, wrong)
    kiosk.get_by_role("button", name="OK").tap()

    expect(kiosk.get_by_role("heading", name="Code blocked")).to_be_visible()
    expect(kiosk.locator("#notice-text")).to_have_text("Too many wrong codes: this code is blocked.")
    expect(kiosk.locator("#notice-next")).to_have_text(
        re.compile(r"^Ask the attendant or Demo Shop for a new code\. Quote your M-Pesa receipt [A-Z0-9]{10}\.$")
    )
    shot(kiosk, "blocked")
    closed(kiosk, app)
    expect(idle(kiosk)).to_be_visible()
    state = Api(live_server, accounts["merchant"]["api_key"]).get(f"/api/otp/status/{reference}").json()["data"]
    assert (state["status"], state["attempts"]) == ("blocked", 3)


def test_the_code_screen_waits_as_long_as_the_code_lasts_then_says_it_expired(app, new_page, accounts, live_server):
    app.config.update(OTP_EXPIRY_MINUTES=2, KIOSK_ABANDON_SECONDS=1)  # a code of 2 minutes; screens left alone 1 s
    phone = open_phone(new_page)
    kiosk = open_kiosk(new_page, SMALL)
    pair(kiosk, accounts["station"]["key"])
    idle(kiosk).click()
    kiosk.keyboard.type("0712345678")
    kiosk.keyboard.press("Enter")
    kiosk.keyboard.type("50")
    kiosk.keyboard.press("Enter")
    kiosk.get_by_role("button", name="Pay KES 50 with M-Pesa").click()
    approve(app, phone, 50)
    payments_become(app, "completed")
    next_look(kiosk)
    expect(otp_prompt(kiosk)).to_be_visible(timeout=SLOW)
    kiosk.clock.fast_forward(60_000)  # a minute untouched: far past the 1 s any other screen waits
    expect(otp_prompt(kiosk)).to_be_visible()
    kiosk.clock.fast_forward(61_000)  # past the code's two minutes
    expect(kiosk.get_by_role("heading", name="Code expired")).to_be_visible(timeout=SLOW)
    expect(kiosk.locator("#notice-text")).to_have_text("This code was not used in time, so it has expired.")
    expect(kiosk.locator("#notice-next")).to_have_text(re.compile(r"^Ask the attendant or Demo Shop for a new code\."))
    shot(kiosk, "expired")
    kiosk.keyboard.press("Enter")  # OK has the focus
    expect(idle(kiosk)).to_be_focused()


def test_a_payment_cancelled_on_the_phone_says_so_and_returns_to_idle(app, new_page, accounts):
    phone = open_phone(new_page)
    kiosk = open_kiosk(new_page, SMALL)
    pair(kiosk, accounts["station"]["key"])
    idle(kiosk).click()
    kiosk.keyboard.type("0712345678")
    kiosk.keyboard.press("Enter")
    kiosk.keyboard.type("100")
    kiosk.keyboard.press("Enter")
    kiosk.get_by_role("button", name="Pay KES 100 with M-Pesa").click()
    reaches_the_phone(app, phone, CUSTOMER)
    expect(phone.get_by_text("Pay KES 100 to DEMO SHOP?")).to_be_visible(timeout=SLOW)
    phone.get_by_role("button", name="Cancel").click()
    payments_become(app, "cancelled")  # M-Pesa told the gateway
    next_look(kiosk)
    expect(kiosk.get_by_role("heading", name="Payment cancelled")).to_be_visible(timeout=SLOW)
    expect(kiosk.locator("#notice-text")).to_have_text(
        "The M-Pesa request was cancelled on your phone. Nothing was charged."
    )
    shot(kiosk, "cancelled")
    closed(kiosk, app)
    expect(idle(kiosk)).to_be_visible()


def test_an_amount_outside_the_range_is_refused_on_the_amount_screen(new_page, accounts):
    kiosk = open_kiosk(new_page, SMALL)
    pair(kiosk, accounts["station"]["key"])
    idle(kiosk).click()
    kiosk.keyboard.type("0812345678")  # not a Safaricom number
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#phone-message")).to_have_text("Enter your Safaricom number, for example 0712 345 678.")
    kiosk.get_by_label("Your M-Pesa phone number").fill("0712345678")
    kiosk.keyboard.press("Enter")
    kiosk.keyboard.type("20000")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#amount-message")).to_have_text(
        "Amount out of range: it must be between KES 5 and KES 10,000"
    )
    shot(kiosk, "amount-refused")
    kiosk.get_by_role("button", name="Cancel").click()
    expect(idle(kiosk)).to_be_focused()


def test_keys_are_checked_when_pairing_and_remembered_per_station(app, new_page, accounts):
    kiosk = open_kiosk(new_page, SMALL)
    message = kiosk.locator("#pair-message")
    pair(kiosk, accounts["station2"]["key"])
    expect(message).to_have_text("This key belongs to station STATION002, not STATION001. Enter the key of STATION001.")
    shot(kiosk, "pair-refused")
    pair(kiosk, "wsk_not-a-key-of-ours")
    expect(message).to_have_text(
        "This key does not work: check it, or rotate the station's key in the portal and use the new one."
    )
    pair(kiosk, accounts["merchant"]["api_key"])
    expect(message).to_have_text("That is not a station key: a station key starts with wsk_.")
    assert kiosk.evaluate("Object.keys(localStorage)") == []

    pair(kiosk, accounts["station"]["key"])
    expect(idle(kiosk)).to_be_visible()
    kiosk.reload()
    expect(idle(kiosk)).to_be_visible()  # remembered on this device
    kiosk.goto("/kiosk/STATION002")  # the same device, another station: paired apart
    expect(kiosk.get_by_role("heading", name="Pair this kiosk with station STATION002")).to_be_visible()
    pair(kiosk, accounts["station2"]["key"])
    expect(kiosk.locator("#station-name")).to_have_text("Demo station 2")
    assert sorted(kiosk.evaluate("Object.keys(localStorage)")) == [
        "water-kiosk:STATION001:key",
        "water-kiosk:STATION002:key",
    ]

    with app.app_context():
        stations.rotate_key(stations.station_by_code(accounts["merchant"]["id"], "STATION001"))
    kiosk.goto("/kiosk/STATION001")
    expect(message).to_have_text(
        "This kiosk's key stopped working: it was rotated, or the station was disabled. "
        "Pair it again with the station's current key."
    )
    shot(kiosk, "key-rotated")
    assert kiosk.evaluate("Object.keys(localStorage)") == ["water-kiosk:STATION002:key"]


def test_an_operator_unpairs_after_a_confirmation(new_page, accounts):
    kiosk = open_kiosk(new_page, SMALL)
    pair(kiosk, accounts["station"]["key"])
    kiosk.get_by_role("button", name="Unpair").click()
    expect(kiosk.get_by_role("heading", name="Unpair this kiosk?")).to_be_visible()
    shot(kiosk, "unpair")
    kiosk.get_by_role("button", name="Keep it paired").click()
    expect(idle(kiosk)).to_be_visible()
    kiosk.get_by_role("button", name="Unpair").click()
    kiosk.get_by_role("button", name="Unpair", exact=True).click()
    expect(kiosk.locator("#pair-message")).to_have_text(
        "Unpaired: this device forgot the key. Enter a station key to pair it again."
    )
    assert kiosk.evaluate("Object.keys(localStorage)") == []


def test_an_abandoned_screen_returns_to_idle(app, new_page, accounts):
    kiosk = open_kiosk(new_page, SMALL, has_touch=True)
    pair(kiosk, accounts["station"]["key"])
    idle(kiosk).tap()
    tap_digits(kiosk, "07")
    kiosk.clock.fast_forward(round(app.config["KIOSK_ABANDON_SECONDS"] * 1000))  # left alone that long
    expect(idle(kiosk)).to_be_visible()
    idle(kiosk).tap()
    expect(kiosk.get_by_label("Your M-Pesa phone number")).to_have_value("")  # nothing of the last customer


def test_over_the_rate_limit_the_kiosk_waits_for_the_reset_instead_of_hammering(
    app, new_page, accounts, live_server, limits_on
):
    app.config["WATER_RATE_LIMIT"] = "3 per 3 seconds"
    key = accounts["station"]["key"]
    kiosk = open_kiosk(new_page, SMALL)
    previews = []
    kiosk.on("response", lambda r: previews.append(r.status) if r.url.endswith("/api/payments/preview") else None)
    pair(kiosk, key)
    expect(idle(kiosk)).to_be_visible()
    idle(kiosk).click()
    kiosk.keyboard.type("0712345678")
    kiosk.keyboard.press("Enter")
    kiosk.keyboard.type("50")
    # A new window begins (so the pairing's does not end under the kiosk), and someone else at
    # the kiosk's address spends it.
    limiter.reset()
    neighbour = Api(live_server, key)
    wait_for(lambda: neighbour.post("/api/payments/preview", json={"amount": 50}).status_code == 429, what="a 429")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#kiosk-wait")).to_have_text(re.compile(r"^Busy: the kiosk goes on in \d+ s$"))
    # The neighbour's first answer of the next window says the reset came; the kiosk's wait then
    # runs on its clock, given as long as the test would wait for it.
    wait_for(lambda: neighbour.post("/api/payments/preview", json={"amount": 50}).status_code == 200, what="a reset")
    kiosk.clock.fast_forward(SLOW)
    expect(kiosk.get_by_role("heading", name="KES 50 → 10 liters")).to_be_visible()
    expect(kiosk.locator("#kiosk-wait")).to_have_text("")
    assert previews == [429, 200]  # asked again once, after the reset, not in a loop
