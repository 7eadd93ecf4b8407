"""The ledger, the payment page, requesting a payment and the dashboard (test client, CSRF on)."""

import csv
import html as htmllib
import io
import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Callback, Payment, PaymentEvent
from portal.timeutil import utcnow

_batch = itertools.count()


def add(app, merchant_id, n, **kw):
    """n payments, one second apart, newest last; returns their ids. Each was pushed, so each
    has the CheckoutRequestID Daraja gave it (a push Daraja refused has none: see test_refused)."""
    batch = next(_batch)
    base = utcnow() - timedelta(hours=1)
    ids = []
    with app.app_context():
        for i in range(n):
            fields = dict(
                status="completed",
                amount=10000,
                phone="254708374149",
                account_reference=f"ORD{i:04d}",
                receipt=f"UKM{i:07d}",
                rail="mpesa",
                kind="stk_push",
                api="checkout",
                meta={},
                created_at=base + timedelta(seconds=i),
            )
            fields.update({k: (v(i) if callable(v) else v) for k, v in kw.items()})
            reference = f"PAY{merchant_id}X{batch}X{i:05d}"
            fields.setdefault("checkout_request_id", f"ws_CO_{reference}")
            p = Payment(merchant_id=merchant_id, reference=reference, **fields)
            db.session.add(p)
            db.session.flush()
            ids.append(p.id)
        db.session.commit()
    return ids


def refs(html):
    return re.findall(r">(ORD\d{4})<", html)


def test_ledger_pages_with_a_keyset_cursor(app, client, signed_in):
    add(app, signed_in, 120)
    first = client.get("/payments").get_data(as_text=True)
    assert refs(first)[:2] == ["ORD0119", "ORD0118"] and len(refs(first)) == 50
    cursor = re.search(r'hx-get="(/payments\?after=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(cursor, headers={"HX-Request": "true", "HX-Target": "load-more"}).get_data(as_text=True)
    assert "<html" not in second and refs(second)[0] == "ORD0069" and len(refs(second)) == 50
    cursor = re.search(r'hx-get="(/payments\?after=[^"]+)"', second).group(1).replace("&amp;", "&")
    third = client.get(cursor).get_data(as_text=True)
    assert refs(third)[-1] == "ORD0000" and len(refs(third)) == 20 and "Older payments" not in third


def test_listing_fifty_rows_takes_a_bounded_number_of_queries(app, client, signed_in):
    add(app, signed_in, 60, status=lambda i: "processing" if i % 2 else "completed")
    with app.app_context():
        engine = db.engine
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        page = client.get("/payments")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert page.status_code == 200 and len(refs(page.get_data(as_text=True))) == 50
    assert len(statements) <= 5, statements  # session user, merchant, one page of rows: no query per row


def test_filters_and_search(app, client, signed_in, accounts):
    add(
        app,
        signed_in,
        6,
        status=lambda i: ["completed", "failed", "cancelled"][i % 3],
        phone=lambda i: "254711000111" if i < 3 else "254722000222",
    )
    add(app, accounts["other_merchant"]["id"], 3)
    page = lambda **q: refs(client.get("/payments", query_string=q).get_data(as_text=True))  # noqa: E731
    assert len(page()) == 6  # the other merchant's rows never show
    assert page(status="failed") == ["ORD0004", "ORD0001"]
    assert page(q="0711000111") == ["ORD0002", "ORD0001", "ORD0000"]
    assert page(q="ukm0000005") == ["ORD0005"]
    assert page(q="ord0003") == ["ORD0003"]
    assert page(q="PAY999") == []
    assert page(status="bogus") == page()  # unknown choices are ignored, not an error
    today = (utcnow() + timedelta(hours=3)).date()
    assert len(page(**{"from": today.isoformat(), "to": today.isoformat()})) in (0, 6)
    assert page(**{"to": (today - timedelta(days=2)).isoformat()}) == []


def test_csv_export_follows_the_filter_and_defuses_formulas(app, client, signed_in):
    ids = add(
        app,
        signed_in,
        3,
        status=lambda i: "completed" if i else "failed",
        account_reference=lambda i: "=HYPERLINK(1)" if i == 2 else f"ORD{i:04d}",
    )
    with client.get("/payments/export.csv?status=completed") as answer:
        assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0][:4] == ["created_at_eat", "reference", "status", "amount"]
    assert [r[2] for r in rows[1:]] == ["completed", "completed"]
    assert rows[1][3] == "100.00" and rows[1][6] == "'=HYPERLINK(1)"
    with app.app_context():
        created = db.session.get(Payment, int(ids[2])).created_at
    assert rows[1][0] == (created + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S+03:00")  # Nairobi, like the screens


def test_row_and_detail_partials_stop_polling_once_final(app, client, signed_in):
    done, open_ = add(app, signed_in, 2, status=lambda i: "completed" if i == 0 else "processing")
    final = client.get(f"/payments/{done}/row")
    assert final.status_code == 286 and "hx-trigger" not in final.get_data(as_text=True)
    live = client.get(f"/payments/{open_}/row")
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.get_data(as_text=True)
    assert client.get(f"/payments/{done}/live").status_code == 286
    assert client.get(f"/payments/{open_}/live").status_code == 200


def test_payment_page_shows_its_timeline_and_callbacks_and_is_private(app, client, signed_in, accounts):
    (pid,) = add(app, signed_in, 1)
    (foreign,) = add(app, accounts["other_merchant"]["id"], 1)
    with app.app_context():
        db.session.add(
            PaymentEvent(
                payment_id=pid,
                from_status="processing",
                to_status="completed",
                source="callback",
                detail="ResultCode 0: paid",
            )
        )
        db.session.add(
            Callback(
                provider="daraja",
                kind="stk",
                path="/callback",
                body='{"Body": "raw body"}',
                headers={},
                payment_id=pid,
                merchant_id=signed_in,
                outcome="applied",
            )
        )
        db.session.commit()
    page = client.get(f"/payments/{pid}").get_data(as_text=True)
    assert "processing → completed" in page and "ResultCode 0: paid" in page
    assert "raw body" in page and "applied" in page
    assert "virtual phone" in page  # sandbox payments link to the customer's phone
    for path in (f"/payments/{foreign}", f"/payments/{foreign}/row", f"/payments/{foreign}/live", "/payments/999999"):
        assert client.get(path).status_code == 404


def post_request(client, auth, htmx=True, **data):
    token = auth.csrf_token("/payments/new")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/payments/new", data={"csrf_token": token, **data}, headers=headers)


def test_request_a_payment_with_htmx_puts_the_new_row_on_top(app, client, auth, signed_in, live_server):
    add(app, signed_in, 2)
    answer = post_request(client, auth, phone="0712 345 678", amount="150", account_reference="Table 4")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in html
    assert html.index("Table 4") < html.index("ORD0001")  # newest first
    assert "Payment request sent to 254712345678" in html
    assert re.search(r'<input [^>]*name="phone"[^>]*value=""', html)  # a fresh form
    with app.app_context():
        payment = Payment.query.filter_by(account_reference="Table 4").one()
        assert (payment.api, payment.amount, payment.status) == ("portal", 15000, "processing")


@pytest.mark.parametrize(
    "data,field,words",
    [
        ({"phone": "0730123456", "amount": "100"}, "phone", "valid Safaricom number"),
        ({"phone": "", "amount": "100"}, "phone", "Enter the customer's M-Pesa number."),
        ({"phone": "0712345678", "amount": "0"}, "amount", "between 1 and 250,000 shillings"),
        ({"phone": "0712345678", "amount": "12.50"}, "amount", "whole shillings, without cents"),
        (
            {"phone": "0712345678", "amount": "10", "account_reference": "way too long ref"},
            "account_reference",
            "up to 12 letters",
        ),
    ],
)
def test_request_errors_are_shown_next_to_the_field(app, client, auth, signed_in, data, field, words):
    answer = post_request(client, auth, **data)
    assert answer.status_code == 422
    html = htmllib.unescape(answer.get_data(as_text=True))
    assert f'id="{field}-error"' in html and words in html
    with app.app_context():
        assert Payment.query.count() == 0


def test_customer_with_an_open_prompt_is_explained(app, client, auth, signed_in, live_server):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60
    assert post_request(client, auth, phone="0712345678", amount="10").status_code == 200
    answer = post_request(client, auth, phone="0712345678", amount="20")
    assert answer.status_code == 422
    assert "This customer already has a payment prompt open" in htmllib.unescape(answer.get_data(as_text=True))


def test_request_without_htmx_redirects_with_a_message(client, auth, signed_in, live_server):
    answer = post_request(client, auth, htmx=False, phone="0712345678", amount="10")
    assert answer.status_code == 302
    assert "Payment request sent" in client.get("/payments/new").get_data(as_text=True)


def add_todays_mix(app, merchant_id, now):
    """Four payments of the last minutes: KES 100 and 200 completed, 300 failed, 400 open."""
    add(
        app,
        merchant_id,
        4,
        status=lambda i: ["completed", "completed", "failed", "processing"][i],
        amount=lambda i: (i + 1) * 10000,
        created_at=lambda i: now - timedelta(minutes=5 - i),
    )


def test_dashboard_figures_and_chart(app, client, signed_in):
    now = utcnow()
    add_todays_mix(app, signed_in, now)
    add(app, signed_in, 1, created_at=now - timedelta(days=20), account_reference="OLD")
    page = client.get("/").get_data(as_text=True)
    today = page[page.index(">Today<") : page.index(">This week<")]
    assert "KES 300.00" in today  # 100 + 200 completed; failed and open ones do not count
    assert "4 payments" in today and "67% successful" in today  # 2 of 3 with an outcome
    assert page.count('class="bar"') == 14
    latest = client.get("/dashboard/latest").get_data(as_text=True)
    assert "<html" not in latest and 'hx-trigger="every 2s"' in latest and "OLD" in latest
