"""The API reference page (/api/docs/ui) in a real browser: Swagger UI, served from our own
static files with nothing fetched from elsewhere, lists every operation of /api/docs, and one
can be opened to read its request model."""

from urllib.parse import urlsplit

import requests
from playwright.sync_api import expect

from tests.browser.conftest import screenshot


def test_the_reference_page_lists_every_operation_offline(page, live_server):
    document = requests.get(f"{live_server}/api/docs", timeout=30).json()
    operations = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    ours = urlsplit(live_server).netloc
    elsewhere: list[str] = []

    def only_ours(route):
        if urlsplit(route.request.url).netloc != ours:
            elsewhere.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", only_ours)
    page.goto("/api/docs/ui")
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(operations))
    listed = {  # each block's method and path, read in one go rather than two round trips a block
        tuple(pair)
        for pair in blocks.evaluate_all(
            """blocks => blocks.map(block => [
                 block.querySelector('.opblock-summary-method').innerText.trim(),
                 block.querySelector('.opblock-summary-path').getAttribute('data-path'),
               ])"""
        )
    }
    assert listed == set(operations)

    push = blocks.filter(has=page.locator('.opblock-summary-path[data-path="/api/mpesa/stk-push"]'))
    push.locator(".opblock-summary-control").click()
    expect(push.get_by_text("phoneNumber").first).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()  # the bearer key can be entered
    screenshot(page, "api-docs")
    assert not elsewhere, f"the page fetched from outside the server: {elsewhere}"
