"""Browser fixtures: Playwright driving Debian's Chromium against the live server.
Screenshots go to tests/artifacts/screenshots (ignored by git). Every page is watched for
Content-Security-Policy violations: a test whose pages caused one fails."""

import os

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from portal import ROOT
from portal.extensions import db
from portal.models import Payment, SandboxStkRequest
from portal.sandbox.africastalking import messaging
from tests.conftest import csrf_token_in, wait_for

# Debian's chromium-headless-shell: Chromium's headless shell, the same engine and version as the
# chromium package without the desktop browser around it (what Playwright itself runs headless).
# The browser tests cost 60% less CPU with it than with /usr/bin/chromium's headless mode (34 s
# against 82 s a run). CHROMIUM_PATH=/usr/bin/chromium runs them in the full browser.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium-headless-shell")
# One folder per database run: the SQLite and PostgreSQL runs go side by side.
SHOTS = os.path.join(
    ROOT,
    "tests",
    "artifacts",
    "screenshots",
    "sqlite" if os.environ.get("TEST_DATABASE_URL", "sqlite") == "sqlite" else "postgresql",
)
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# Flags for a closed network: no background calls to Google's services, no sandbox as root.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium-headless-shell")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


CSP_WORDS = "Content Security Policy"


def watch_csp(page, violations: list) -> None:
    """Chromium reports each blocked script, style or frame as a console error naming the policy."""
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" and CSP_WORDS in m.text else None)


@pytest.fixture
def new_page(browser, live_server):
    contexts, violations = [], []

    def make(viewport=DESKTOP, clock=False, **options):
        """A page in a context of its own (its own storage); `options` go to the context (has_touch=True).
        clock=True: the page's timers run on Playwright's clock, at the real pace until the test
        moves it on (poll_now)."""
        context = browser.new_context(base_url=live_server, viewport=viewport, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if clock:
            page.clock.install()
        watch_csp(page, violations)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not violations, f"the pages broke their Content-Security-Policy: {violations}"


@pytest.fixture
def page(new_page):
    return new_page()


# ms: the longest a live part of a portal page waits before asking again (hx-trigger="every 5s"
# on the payouts' receipts; every other poll is every 2s or every 1s)
LONGEST_POLL = 5_000


def poll_now(page) -> None:
    """Every poll of a page made with clock=True asks now instead of at its next turn: call it
    once what the page waits for has happened on the server."""
    page.clock.fast_forward(LONGEST_POLL)


def payments_become(app, *statuses: str) -> None:
    """Waits until the payments on the server, oldest first, have these statuses."""

    def there():
        with app.app_context():
            return tuple(db.session.scalars(select(Payment.status).order_by(Payment.id))) == statuses

    wait_for(there, timeout=30, what=f"payments {statuses}")


def reaches_the_phone(app, phone, msisdn: str, sms: bool = False) -> None:
    """Waits until the simulator holds an M-Pesa prompt for `msisdn` (with sms=True: an SMS that
    reached it), then has the virtual phone, a page made with clock=True, ask at once instead of
    at its next poll (every 1 s)."""

    def there():
        with app.app_context():
            if sms:
                return bool(messaging.kept(msisdn, 1, delivered_only=True))
            return db.session.query(SandboxStkRequest.query.filter_by(phone=msisdn).exists()).scalar()

    wait_for(there, timeout=30, what=f"{'an SMS' if sms else 'a prompt'} for {msisdn}")
    poll_now(phone)


def sign_in(page, account):
    """Through the login form, as a person does (the journeys about signing in)."""
    page.goto("/login")
    page.get_by_label("Email").fill(account["email"])
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def signed_in(page, account):
    """The session the login form gives, for the journeys that are not about signing in: the
    form's own POST (CSRF token and all) over the page's request context, which shares its
    cookies, then the dashboard. Half a second less than filling the form in the browser."""
    token = csrf_token_in(page.request.get("/login").text())
    answer = page.request.post(
        "/login",
        form={"email": account["email"], "password": account["password"], "csrf_token": token},
        max_redirects=0,
    )
    assert answer.status == 302, f"sign-in refused: {answer.status} {answer.text()[:200]}"
    page.goto("/")


def screenshot_path(name: str) -> str:
    os.makedirs(SHOTS, exist_ok=True)
    return os.path.join(SHOTS, f"{name}.png")


def screenshot(page, name: str) -> str:
    path = screenshot_path(name)
    # caret="initial": hiding the caret makes Playwright inject a style, which the page's CSP
    # blocks and reports as a violation (seen on the payouts review): not the page's doing.
    page.screenshot(path=path, full_page=True, caret="initial")
    return path


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks to group by
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (--dist loadgroup) the browser tests share one process, so one Chromium."""
    for item in items:
        if item.nodeid.startswith("tests/browser/"):
            item.add_marker(pytest.mark.xdist_group("browser"))
