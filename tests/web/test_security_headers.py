"""Security headers on every answer, and templates that need no inline script or style under them."""

import os
import re

import pytest

from portal import ROOT

TEMPLATES = os.path.join(ROOT, "templates")


def directives(answer) -> dict:
    policy = answer.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/payments",
        "/payments/new",
        "/keys",
        "/settings",
        "/dashboard/latest",
        "/dashboard/figures",
        "/no-such-page",
    ],
)
def test_every_portal_answer_carries_the_headers(client, signed_in, path):
    answer = client.get(path)
    csp = directives(answer)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # no inline, no eval
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in answer.headers  # only in production, behind TLS


@pytest.mark.parametrize("path", ["/login", "/static/app.css", "/health", "/sandbox/phone/254708374149"])
def test_pages_without_a_session_and_other_routes_carry_them_too(client, path):
    answer = client.get(path)
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_in_production(app, client):
    app.config["ENV"] = "production"
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=31536000")


def template_sources():
    for folder, _, files in os.walk(TEMPLATES):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                yield os.path.relpath(path, TEMPLATES), f.read()


def test_no_template_has_inline_script_style_or_event_handlers():
    """The policy would block them in the browser; this names the template that broke the rule."""
    found = []
    for name, source in template_sources():
        for pattern in (
            r"<script(?![^>]*\bsrc=)[^>]*>",
            r"<style\b",
            r"\sstyle=",
            r"\son[a-z]+=",
            r"javascript:",
            r"\shx-on",
        ):
            found += [(name, m.group(0)) for m in re.finditer(pattern, source, re.I)]
    assert found == []


def test_htmx_is_told_not_to_inject_its_style_or_eval(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r'name="htmx-config" content=\'([^\']+)\'', page).group(1)
    assert '"includeIndicatorStyles":false' in config and '"allowEval":false' in config
