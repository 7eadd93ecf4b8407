"""How a request's transaction ends when the view did not end it: a request that only read
commits (psycopg forgets a connection's prepared statements whenever it rolls back, so reads
that rolled back made every later hot-path statement on that connection be parsed and planned
again); anything else rolls back, so nothing a view left uncommitted is ever kept."""

import pytest
from sqlalchemy import event, select, text, update

from portal import create_app
from portal.extensions import db
from portal.models import Merchant
from tests.conftest import TEST_CONFIG

POSTGRESQL = TEST_CONFIG["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


@pytest.fixture
def endings(accounts):
    """An app of one pooled connection, with views that leave their transaction open; and the
    list of how each transaction on that connection ended."""
    app = create_app(dict(TEST_CONFIG, DB_POOL_SIZE=1))
    merchant_id = accounts["merchant"]["id"]
    ended = []

    @app.get("/read")
    def read():
        for _ in range(8):  # past psycopg's prepare threshold (5): the statement is prepared
            db.session.execute(select(Merchant.name).where(Merchant.id == merchant_id)).scalar_one()
        return "read"

    @app.get("/prepared")
    def prepared():
        if not POSTGRESQL:
            return "0"
        return str(db.session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())

    @app.get("/wrote")
    def wrote():
        db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name="Renamed"))
        return "refused without committing", 400

    @app.get("/wrote-and-answered")
    def wrote_and_answered():
        db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name="Renamed"))
        return "answered without committing"

    @app.get("/changed")
    def changed():
        db.session.get(Merchant, merchant_id).name = "Renamed"  # in the session only: never flushed
        return "changed an object"

    @app.get("/failed")
    def failed():
        db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name="Renamed"))
        raise RuntimeError("a bug after a write")

    with app.app_context():
        event.listen(db.engine, "commit", lambda _conn: ended.append("commit"))
        event.listen(db.engine, "rollback", lambda _conn: ended.append("rollback"))
    yield app.test_client(), ended, merchant_id
    with app.app_context():
        db.engine.dispose()


def name_of(merchant_id: int) -> str:
    return db.session.execute(select(Merchant.name).where(Merchant.id == merchant_id)).scalar_one()


def test_a_request_that_only_read_commits_and_its_prepared_statements_stay(endings):
    client, ended, _ = endings
    assert client.get("/read").status_code == 200
    assert ended == ["commit"]
    prepared = int(client.get("/prepared").get_data(as_text=True))
    if POSTGRESQL:  # the same pooled connection, next request: what the reads prepared is still there
        assert prepared >= 1  # (a rollback deallocates it)


@pytest.mark.parametrize("path", ["/wrote", "/wrote-and-answered", "/changed", "/failed"])
def test_a_request_that_wrote_or_changed_anything_without_committing_rolls_back(ctx, endings, path):
    client, ended, merchant_id = endings
    before = name_of(merchant_id)
    db.session.rollback()
    client.get(path)
    assert ended == ["rollback"]
    assert name_of(merchant_id) == before != "Renamed"
