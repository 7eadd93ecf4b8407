"""Suite-wide tenancy guard: every route in the URL map that takes a merchant's object is called
by another merchant (API key or portal session, every method) and must answer 404/403 and
change nothing. A route the guard cannot fill fails it, so no new route escapes unchecked."""

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiKey, Merchant, Payment
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
}

# How the other merchant reaches each blueprint's routes.
AUTH_BY_BLUEPRINT = {
    "checkout": "api_key",
    "gateway": "api_key",
    "auth": "session",
    "dashboard": "session",
    "payments": "session",
    "payouts": "session",
    "keys": "session",
    "settings": "session",
}

COLUMNS_THAT_MAY_CHANGE = {("api_keys", "last_used_at")}  # the caller's own key is touched on use


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


# URL variable -> a function that creates merchant A's object and returns the variable's value.
FILL: dict[str, Callable[[int], object]] = {
    "checkout_request_id": lambda m: _payment(m).checkout_request_id,
    "payment_id": lambda m: _payment(m).id,
    "transaction_id": lambda m: _payment(m).id,
    "key_id": lambda m: _api_key(m).id,
}


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
            values = {name: FILL[name](owner["id"]) for name in rule.arguments}
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
                values = {name: FILL[name](owner["id"]) for name in rule.arguments}
            path = app.url_map.bind("localhost").build(rule.endpoint, values)
            headers = {"Authorization": f"Bearer {owner['api_key']}"}
            answer = owner_client.get(path, headers=headers)
            assert answer.status_code == 200, f"GET {path} as its owner: {answer.status_code}"
    print(f"tenancy guard checked {len(checked)} route-methods: {checked}")


@pytest.mark.parametrize("name", sorted(FILL))
def test_every_filler_is_used(app, name):
    assert any(name in rule.arguments for rule in app.url_map.iter_rules()), f"FILL[{name!r}] fills no route"
