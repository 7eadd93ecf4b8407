"""The queues page: the figures, the merchant's failed jobs with their errors (most recent
failure first), and a Retry button whose row polls until its job has run."""

import re
from datetime import timedelta

from portal.extensions import db
from portal.models import DeadLetter
from portal.timeutil import utcnow
from tests.helpers import dead_letter_row, failed_stk_query, settled, stk_payment


def htmx(token: str) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": token}


def csrf(client) -> str:
    page = client.get("/queues").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_page_needs_a_signed_in_merchant(client):
    assert "/login" in client.get("/queues").headers["Location"]
    assert client.get("/queues", headers={"HX-Request": "true"}).status_code == 401
    assert client.post("/queues/dead-letters/1/retry").status_code in (302, 400)


def test_the_page_lists_the_merchants_failed_jobs_recent_errors_first(app, client, signed_in, accounts):
    now = utcnow()
    with app.app_context():
        payment = stk_payment(signed_in, "PAYQ0001")
        older = dead_letter_row(signed_in, 1, error="older trouble", failed_at=now - timedelta(hours=2))
        newer = dead_letter_row(
            signed_in, 2, error="newer trouble", failed_at=now - timedelta(minutes=1), payment_id=payment.id
        )
        dead_letter_row(
            signed_in, 3, error="long fixed", status="resolved", failed_at=now - timedelta(hours=3), resolved_at=now
        )
        dead_letter_row(accounts["other_merchant"]["id"], 4, error="someone else's trouble")
        ids, payment_id = (older.id, newer.id), payment.id

    answer = client.get("/queues")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'aria-current="page">Queues</a>' in page
    assert "someone else" not in page
    assert page.index("newer trouble") < page.index("older trouble") < page.index("long fixed")
    assert "<strong>DarajaUnavailable</strong>: newer trouble" in page
    assert "Ask M-Pesa for the result of an STK push" in page
    assert f'href="/payments/{payment_id}">PAYQ0001</a>' in page  # the payment it concerns
    for ident in ids:
        assert f'hx-post="/queues/dead-letters/{ident}/retry"' in page
    assert page.count(">Retry<") == 2  # not on the resolved one
    assert 'data-figure="unresolved">2<' in page
    assert 'id="queue-payments"' in page and 'id="queue-sandbox"' in page
    # nothing is waiting or being retried: the figures do not poll
    assert 'hx-trigger="dead-letters-changed from:body"' in page


def test_retry_swaps_the_row_which_polls_until_its_job_has_run(app, api, client, signed_in):
    dead_letter_id, payment_id = failed_stk_query(app, api)
    app.config["SANDBOX_FAULT_API_500"] = 0  # the cause is fixed
    token = csrf(client)

    answer = client.post(f"/queues/dead-letters/{dead_letter_id}/retry", headers=htmx(token))
    assert answer.status_code == 200
    assert answer.headers["HX-Trigger"] == "dead-letters-changed"  # the figures refresh at once
    row = answer.get_data(as_text=True).strip()
    assert row.startswith(f'<tr id="dead-letter-{dead_letter_id}"') and "<html" not in row
    assert 'data-status="retrying"' in row and "Retry queued." in row
    assert f'hx-get="/queues/dead-letters/{dead_letter_id}" hx-trigger="every 2s"' in row
    assert "Retrying…" in row and "disabled" in row

    settled(app)
    final = client.get(f"/queues/dead-letters/{dead_letter_id}", headers={"HX-Request": "true"})
    assert final.status_code == 286  # polling stops
    html = final.get_data(as_text=True)
    assert 'data-status="resolved"' in html and "hx-trigger" not in html and ">Retry<" not in html
    assert "retried 1×" in html
    figures = client.get("/queues/figures", headers={"HX-Request": "true"})
    assert figures.status_code == 286 and "every 2s" not in figures.get_data(as_text=True)

    with app.app_context():
        assert db.session.get(DeadLetter, dead_letter_id).status == "resolved"
    again = client.post(f"/queues/dead-letters/{dead_letter_id}/retry", headers=htmx(token))
    assert again.status_code == 200 and "already been retried successfully" in again.get_data(as_text=True)


def test_the_figures_poll_while_a_retry_is_under_way(app, client, signed_in):
    with app.app_context():
        dead_letter_row(signed_in, 1, status="retrying", retry_count=1, retried_at=utcnow())
    answer = client.get("/queues/figures", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert 'hx-trigger="every 2s, dead-letters-changed from:body"' in answer.get_data(as_text=True)


def test_a_retry_without_its_csrf_token_is_refused_and_changes_nothing(app, client, signed_in):
    with app.app_context():
        ident = dead_letter_row(signed_in, 1).id
    answer = client.post(f"/queues/dead-letters/{ident}/retry", headers={"HX-Request": "true"})
    assert answer.status_code == 400
    with app.app_context():
        row = db.session.get(DeadLetter, ident)
        assert (row.status, row.retry_count) == ("failed", 0)


def test_a_plain_form_post_retries_and_comes_back_to_the_page(app, client, signed_in, live_server):
    with app.app_context():
        ident = dead_letter_row(signed_in, 1, args=[10**6]).id  # a payment that does not exist: nothing to ask
    token = csrf(client)
    answer = client.post(f"/queues/dead-letters/{ident}/retry", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/queues")
    assert "Retry queued." in client.get("/queues").get_data(as_text=True)
    settled(app)
    with app.app_context():
        assert db.session.get(DeadLetter, ident).status == "resolved"
