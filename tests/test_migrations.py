"""The schema comes from the migrations, and they match the models."""

import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Config

from portal import ROOT
from portal.extensions import db


def test_migrations_have_one_head():
    config = Config(os.path.join(ROOT, "migrations", "alembic.ini"))
    config.set_main_option("script_location", os.path.join(ROOT, "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migrated_schema_matches_the_models(ctx):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
