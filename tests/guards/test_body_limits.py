"""Every route that takes a body refuses one over MAX_CONTENT_LENGTH with 413 and keeps nothing
of it, whether the body declares its length or comes in chunks (no Content-Length: werkzeug
alone would read the limit's worth and silently drop the rest)."""

import requests

from portal.extensions import db
from portal.models import Callback

BODY_METHODS = {"POST", "PUT", "PATCH"}


def chunks(size: int):
    yield b"{"
    yield b" " * size
    yield b"}"


def _url(rule) -> str:
    return rule.build(dict.fromkeys(rule.arguments, 1))[1]  # 1 suits every converter here


def test_every_body_route_refuses_an_oversize_chunked_body_unread(app, live_server, accounts):
    limit = app.config["MAX_CONTENT_LENGTH"]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {accounts['merchant']['api_key']}"}
    rules = [r for r in app.url_map.iter_rules() if r.methods & BODY_METHODS and not r.rule.startswith("/static")]
    assert len(rules) > 40  # the walk reaches the whole app
    wrong = []
    for rule in rules:
        method = sorted(rule.methods & BODY_METHODS)[0]
        answer = requests.request(method, live_server + _url(rule), data=chunks(limit), headers=headers, timeout=30)
        if answer.status_code != 413:
            wrong.append(f"{method} {rule.rule}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    with app.app_context():
        assert db.session.query(Callback).count() == 0  # no provider route kept a cut body


def test_a_chunked_body_under_the_limit_is_read_whole(app, live_server, accounts):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {accounts['merchant']['api_key']}"}

    def body():
        yield b'{"amount": '
        yield b"52}"

    answer = requests.post(live_server + "/api/payments/preview", data=body(), headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["liters"] == 10
