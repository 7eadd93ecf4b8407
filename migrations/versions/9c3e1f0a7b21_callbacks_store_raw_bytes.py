"""callbacks store the raw bytes; sweeper: an index for unread callbacks, failures recorded on payments

Revision ID: 9c3e1f0a7b21
Revises: 41d7efdfaf08
Create Date: 2026-11-24

"""
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '9c3e1f0a7b21'
down_revision = '41d7efdfaf08'
branch_labels = None
depends_on = None


def _to_bytes(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"convert_to({column}, 'UTF8')"
    return f"CAST({column} AS BLOB)"


def _to_text(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        # a text column cannot hold every byte string: non-ASCII and NUL come back as \ooo escapes
        return f"encode({column}, 'escape')"
    return f"CAST({column} AS TEXT)"


def _redact_tokens():
    """Callback tokens were stored in clear in the query string: keep only whether each was valid."""
    key = current_app.config["SECRET_KEY"].encode()
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, query_string FROM callbacks WHERE query_string LIKE '%token=%'"))
    for ident, query in rows.fetchall():
        pairs = parse_qsl(query, keep_blank_values=True)
        args = dict(pairs)
        ref, token = args.get("ref"), args.get("token")
        valid = bool(ref and token) and hmac.compare_digest(
            hmac.new(key, f"stk-callback:{ref}".encode(), hashlib.sha256).hexdigest()[:40].encode(), token.encode())
        redacted = urlencode([(k, "redacted" if k == "token" else v) for k, v in pairs])
        bind.execute(sa.text("UPDATE callbacks SET query_string = :q, token_valid = (token_valid OR :v) WHERE id = :i"),
                     {"q": redacted, "v": valid, "i": ident})


def upgrade():
    _redact_tokens()
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=True))
    op.execute(f"UPDATE callbacks SET raw = {_to_bytes('body')}")
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('body')
        batch_op.create_index('ix_callbacks_outcome_received', ['outcome', 'received_at'], unique=False)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_error', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('sweep_error')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_callbacks_outcome_received')
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
    op.execute(f"UPDATE callbacks SET body = {_to_text('raw')}")
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('raw')
