"""A number in a URL past the database's integer names no row: 404 in each route's own format,
never a failed query (PostgreSQL refuses such a number: integer out of range)."""

HUGE = 6_868_367_620_995_062_784  # schemathesis found it: /api/transactions/{id} answered 500


def test_an_id_past_the_database_integer_is_not_found_in_the_api(api):
    answer = api.get(f"/api/transactions/{HUGE}")
    assert answer.status_code == 404
    assert answer.json()["success"] is False and answer.json()["error"] == "NOT_FOUND"
    assert api.get(f"/api/transactions/{2**31 - 1}").status_code == 404  # the largest id is looked up


def test_an_id_past_the_database_integer_is_not_found_in_the_portal(client, auth, accounts):
    auth.login(accounts["merchant"]["email"], accounts["merchant"]["password"])
    assert client.get(f"/payments/{HUGE}").status_code == 404
    assert client.get(f"/payments/{2**31}").status_code == 404
