"""Suite-wide tenancy guard: every route in the URL map that takes a merchant's object is called
by another merchant (API key or portal session, every method) and must answer 404/403 and
change nothing. A route the guard cannot fill fails it, so no new route escapes unchecked."""

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiKey, DeadLetter, Escrow, InternetPackage, IspClient, Merchant, Payment
from portal.services import stations
from portal.services.transitions import transition
from tests.conftest import AuthActions

# Rules whose URL variables name no merchant's object, each with the reason. The test fails if
# one of these disappears from the URL map, so the list cannot go stale.
NO_MERCHANT_OBJECT = {
    "/static/<path:filename>",  # public files
    # The virtual phone belongs to a customer's number, not to a merchant (sandbox only; its own
    # tests check that one number cannot answer another's prompt).
    "/sandbox/phone/<msisdn>",
    "/sandbox/phone/<msisdn>/screen",
    "/sandbox/phone/<msisdn>/prompts/<int:prompt_id>/pay",
    "/sandbox/phone/<msisdn>/prompts/<int:prompt_id>/cancel",
    # The Paystack simulator's objects belong to its integrations (Paystack accounts), not to
    # merchants; tests/sandbox/paystack checks one integration cannot read or touch another's.
    "/sandbox/paystack/transaction/verify/<reference>",
    "/sandbox/paystack/charge/<reference>",
    "/sandbox/paystack/transfer/verify/<reference>",
    # Its hosted checkout is the customer's, opened by the unguessable access code Paystack hands out.
    "/sandbox/paystack/checkout/<access_code>",
    "/sandbox/paystack/checkout/<access_code>/card",
    "/sandbox/paystack/checkout/<access_code>/mpesa",
    "/sandbox/paystack/checkout/<access_code>/fail",
    "/sandbox/paystack/checkout/<access_code>/cancel",
    # The kiosk page is the same static shell for any code: codes are per merchant, so the page
    # looks nothing up; its script pairs with a station's key, and the water API decides by the key.
    "/kiosk/<station>",
    # A payer's id is the caller's own name for its customer, a filter on the caller's payments:
    # another merchant asking for the same id sees its own payer's (tests/api/test_bookings_payments).
    "/api/payments/history/<user_id>",
}

# How the other merchant reaches each blueprint's routes.
AUTH_BY_BLUEPRINT = {
    "checkout": "api_key",
    "gateway": "api_key",
    "water": "api_key",  # its station routes take an API key too
    "bookings": "api_key",
    "auth": "session",
    "dashboard": "session",
    "payments": "session",
    "payouts": "session",
    "escrow": "session",
    "keys": "session",
    "settings": "session",
    "isp_pages": "session",
    "queues": "session",
    "stations": "session",
}

COLUMNS_THAT_MAY_CHANGE = {("api_keys", "last_used_at")}  # the caller's own key is touched on use

# Routes with no merchant's object in their URL that list or stream merchant data, by how a
# merchant reaches them: another merchant's answer must not show the owner's payment. The
# event stream replays every stored event after 0 and ends at the tests' short lifetime.
LISTINGS = {
    "/api/events?lastEventId=0": "api_key",
    "/api/transactions": "api_key",
    "/transactions": "api_key",
}


_serial = itertools.count(1)


def _payment(merchant_id: int) -> Payment:
    n = next(_serial)
    payment = Payment(
        merchant_id=merchant_id,
        reference=f"PAYTENANT{n:04d}",
        rail="mpesa",
        kind="stk_push",
        status="processing",
        amount=10000,
        phone="254708374149",
        api="checkout",
        meta={},
        checkout_request_id=f"ws_CO_tenancy_{n:04d}",
        merchant_request_id=f"tenancy-{n:04d}",
        account_reference="Order1",
        description="Tenancy",
    )
    db.session.add(payment)
    db.session.commit()
    return payment


def _api_key(merchant_id: int) -> ApiKey:
    row, _ = ApiKey.issue(db.session.get(Merchant, merchant_id), "Owner's key")
    db.session.commit()
    return row


def _isp(model, merchant_id: int, **fields):
    row = model(merchant_id=merchant_id, name=f"Tenancy {next(_serial)}", **fields)
    db.session.add(row)
    db.session.commit()
    return row


def _dead_letter(merchant_id: int) -> DeadLetter:
    """One of merchant A's failed jobs, being retried (so its row answers its owner with 200:
    a row that is not retrying answers 286, polling's stop)."""
    n = next(_serial)
    payment = _payment(merchant_id)
    row = DeadLetter(
        merchant_id=merchant_id,
        payment_id=payment.id,
        job_id=f"stk-query-{payment.id}",
        func="portal.jobs.query_stk_payment",
        args=[payment.id],
        queue="payments",
        fingerprint=f"tenancy-{n:04d}",
        error_type="DarajaUnavailable",
        error="could not connect to Daraja",
        attempts=6,
        status="retrying",
    )
    db.session.add(row)
    db.session.commit()
    return row


def _water_payment(merchant_id: int) -> str:
    """One of merchant A's completed water payments (final: asking about it asks M-Pesa nothing)."""
    payment = _payment(merchant_id)
    payment.api, payment.status, payment.meta = "water", "completed", {"liters": 10}
    payment.reference = f"WS-1700000000000-T{payment.id:07d}"
    db.session.commit()
    return payment.reference


def _water_paystack_payment(merchant_id: int) -> str:
    """One of merchant A's completed water payments through Paystack (final: verifying it asks
    Paystack nothing)."""
    payment = _payment(merchant_id)
    payment.api, payment.rail, payment.kind, payment.status = "water", "paystack", "checkout", "completed"
    payment.checkout_request_id = payment.merchant_request_id = None
    payment.meta, payment.email = {"liters": 10, "channel": "card"}, "owner@example.com"
    payment.reference = f"WS-1700000000000-P{payment.id:07d}"
    db.session.commit()
    return payment.reference


def _escrow(merchant_id: int) -> Escrow:
    """One of merchant A's paid bookings, held."""
    payment = _payment(merchant_id)
    payment.api, payment.rail, payment.kind, payment.status = "bookings", "paystack", "checkout", "completed"
    row = Escrow(merchant_id=merchant_id, payment_id=payment.id, booking_id="tenancy", amount=10000, meta={})
    db.session.add(row)
    db.session.commit()
    return row


# URL variable -> a function that creates merchant A's object and returns the variable's value.
FILL: dict[str, Callable[[int], object]] = {
    "checkout_request_id": lambda m: _payment(m).checkout_request_id,
    "payment_id": lambda m: _payment(m).id,
    "transaction_id": lambda m: _payment(m).id,
    "key_id": lambda m: _api_key(m).id,
    "client_id": lambda m: _isp(IspClient, m).id,
    "package_id": lambda m: _isp(InternetPackage, m, price=5000).id,
    "dead_letter_id": lambda m: _dead_letter(m).id,
    "escrow_id": lambda m: _escrow(m).id,
    "reference": _water_payment,
    "station_id": lambda m: stations.create_station(m, f"TENANCY{next(_serial)}", "Tenancy kiosk")[0].id,
}


def _bookings_payment(merchant_id: int) -> str:
    """One of merchant A's failed bookings payments (final: verify asks Paystack nothing)."""
    payment = _payment(merchant_id)
    payment.api, payment.rail, payment.kind, payment.status = "bookings", "paystack", "charge", "failed"
    payment.reference, payment.checkout_request_id = f"mpesa-tenancy{payment.id:07d}", None
    payment.meta = {"bookingId": "booking_1"}
    db.session.commit()
    return payment.reference


# Rules whose variable names an object of another kind than FILL's, each with its own filler.
FILL_FOR_RULE: dict[str, dict[str, Callable[[int], object]]] = {
    "/api/payments/paystack/verify/<reference>": {"reference": _water_paystack_payment},
    "/api/payments/verify/<reference>": {"reference": _bookings_payment},
    "/api/payments/retry/<reference>": {"reference": _bookings_payment},
    "/api/payments/cancel/<reference>": {"reference": _bookings_payment},
}


def fill(rule, merchant_id: int) -> dict:
    """The values of the rule's variables, each an object merchant A now owns."""
    own = FILL_FOR_RULE.get(rule.rule, {})
    return {name: own.get(name, FILL[name])(merchant_id) for name in rule.arguments}


def snapshot() -> dict:
    """Every row of every table, minus the columns a refused request may legitimately touch."""
    out = {}
    for table in db.metadata.sorted_tables:
        keep = [c for c in table.columns if (table.name, c.name) not in COLUMNS_THAT_MAY_CHANGE]
        out[table.name] = sorted(map(repr, db.session.execute(select(*keep)).all()))
    return out


def merchant_object_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.arguments and rule.rule not in NO_MERCHANT_OBJECT]


def test_the_list_of_routes_without_a_merchant_object_is_not_stale(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert NO_MERCHANT_OBJECT <= rules, f"no longer in the URL map: {sorted(NO_MERCHANT_OBJECT - rules)}"
    assert all(any(r.rule == rule and r.arguments for r in app.url_map.iter_rules()) for rule in NO_MERCHANT_OBJECT)


def test_every_merchant_object_route_is_known_to_the_guard(app):
    unknown = []
    for rule in merchant_object_rules(app):
        blueprint = rule.endpoint.rpartition(".")[0]
        if blueprint not in AUTH_BY_BLUEPRINT or set(rule.arguments) - set(FILL):
            unknown.append(f"{rule.rule} ({rule.endpoint})")
    assert not unknown, (
        "routes the tenancy guard cannot fill: add the object to FILL, the blueprint to "
        f"AUTH_BY_BLUEPRINT, or (if it takes no merchant's object) the rule to "
        f"NO_MERCHANT_OBJECT: {unknown}"
    )


def test_another_merchants_objects_answer_404_and_stay_unchanged(app, accounts):
    owner, intruder = accounts["merchant"], accounts["other_merchant"]
    rules = merchant_object_rules(app)
    assert len(rules) >= 5  # the guard covers what exists today, at least
    portal = app.test_client()
    auth = AuthActions(portal)
    assert auth.login(intruder["email"], intruder["password"]).status_code == 302
    csrf = auth.csrf_token("/keys")
    api = app.test_client()
    checked = []
    for rule in rules:
        with app.app_context():
            values = fill(rule, owner["id"])
            before = snapshot()
        path = app.url_map.bind("localhost").build(rule.endpoint, values)
        kind = AUTH_BY_BLUEPRINT[rule.endpoint.rpartition(".")[0]]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if kind == "api_key":
                answer = api.open(
                    path,
                    method=method,
                    headers={"Authorization": f"Bearer {intruder['api_key']}"},
                    json={} if method != "GET" else None,
                )
            else:
                answer = portal.open(
                    path,
                    method=method,
                    headers={"X-CSRFToken": csrf, "HX-Request": "true"},
                    data={"csrf_token": csrf} if method != "GET" else None,
                )
            assert answer.status_code in (403, 404), f"{method} {path} as another merchant: {answer.status_code}"
            with app.app_context():
                assert snapshot() == before, f"{method} {path} as another merchant changed the database"
            checked.append(f"{method} {rule.rule}")
    # and the owner does reach them (so a 404 above is about tenancy, not a broken route)
    owner_client = app.test_client()
    AuthActions(owner_client).login(owner["email"], owner["password"])
    for rule in rules:
        if "GET" in rule.methods:
            with app.app_context():
                values = fill(rule, owner["id"])
            path = app.url_map.bind("localhost").build(rule.endpoint, values)
            headers = {"Authorization": f"Bearer {owner['api_key']}"}
            answer = owner_client.get(path, headers=headers)
            assert answer.status_code == 200, f"GET {path} as its owner: {answer.status_code}"
    print(f"tenancy guard checked {len(checked)} route-methods: {checked}")


# Blueprints whose routes name the merchant's objects in the JSON body instead of the URL, each
# with the body naming merchant A's objects under the caller's credential (`owner` and
# `credential` are made by _isp_objects). The guard fails for a route of theirs it has no body for.
BODY_ADDRESSED: dict[str, dict[str, Callable[[dict, str], dict]]] = {
    "isp": {
        "isp.initiate": lambda owner, credential: {
            "client_id": credential,
            "package_id": owner["package_id"],
            "phone_number": "254708374149",
            "description": "Tenancy",
        },
        "isp.status": lambda owner, credential: {"client_id": credential, "checkout_id": owner["checkout_id"]},
    }
}


def _isp_objects(merchant_id: int) -> dict:
    payment = _payment(merchant_id)
    client = _isp(IspClient, merchant_id)
    payment.api, payment.meta = "isp", {"isp_client_id": client.id}
    db.session.commit()
    return {
        "client_id": client.id,
        "package_id": _isp(InternetPackage, merchant_id, price=5000).id,
        "checkout_id": payment.checkout_request_id,
    }


def test_objects_named_in_the_body_answer_404_to_another_merchant(app, accounts, live_server):
    owner_id, intruder_id = accounts["merchant"]["id"], accounts["other_merchant"]["id"]
    app.config["SANDBOX_CALLBACK_DELAY"] = 60  # the owner's pushes are not answered while snapshots compare
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.rpartition(".")[0] in BODY_ADDRESSED]
    assert len(rules) >= 2
    client = app.test_client()
    for rule in rules:
        bodies = BODY_ADDRESSED[rule.endpoint.rpartition(".")[0]]
        assert rule.endpoint in bodies, f"the tenancy guard has no body for {rule.rule} ({rule.endpoint})"
        with app.app_context():
            owner, intruder = _isp_objects(owner_id), _isp_objects(intruder_id)
            before = snapshot()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(rule.rule, method=method, json=bodies[rule.endpoint](owner, intruder["client_id"]))
            assert answer.status_code in (403, 404), f"{method} {rule.rule} as another merchant: {answer.status_code}"
            with app.app_context():
                assert snapshot() == before, f"{method} {rule.rule} as another merchant changed the database"
            mine = client.open(rule.rule, method=method, json=bodies[rule.endpoint](owner, owner["client_id"]))
            assert mine.status_code == 200, f"{method} {rule.rule} as its owner: {mine.status_code} {mine.get_json()}"


def test_listings_show_another_merchant_none_of_the_owners_payments(app, accounts):
    owner, intruder = accounts["merchant"], accounts["other_merchant"]
    with app.app_context():
        payment = _payment(owner["id"])
        assert transition(payment, "completed", "callback")  # a stored event, for the stream
        db.session.commit()
        marks = (payment.reference, payment.checkout_request_id)
    known = {rule.rule for rule in app.url_map.iter_rules()}
    client = app.test_client()
    for path, kind in LISTINGS.items():
        assert path.partition("?")[0] in known, f"LISTINGS names {path}, which is no longer a route"
        assert kind == "api_key"  # portal listings are checked by their own page tests
        shown = {}
        for who in (owner, intruder):
            answer = client.get(path, headers={"Authorization": f"Bearer {who['api_key']}"})
            assert answer.status_code == 200, f"GET {path}: {answer.status_code}"
            shown[who["id"]] = any(mark in answer.get_data(as_text=True) for mark in marks)
        assert shown[owner["id"]], f"GET {path} does not show its owner the payment: the check proves nothing"
        assert not shown[intruder["id"]], f"GET {path} shows another merchant's payment"


@pytest.mark.parametrize("name", sorted(FILL))
def test_every_filler_is_used(app, name):
    assert any(name in rule.arguments for rule in app.url_map.iter_rules()), f"FILL[{name!r}] fills no route"


@pytest.mark.parametrize("path", sorted(FILL_FOR_RULE))
def test_every_rule_filler_is_a_rule(app, path):
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    assert path in rules, f"FILL_FOR_RULE names {path}, which is no longer a route"
    assert set(FILL_FOR_RULE[path]) <= set(rules[path].arguments)
