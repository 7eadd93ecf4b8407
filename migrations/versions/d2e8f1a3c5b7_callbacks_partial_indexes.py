"""callbacks: partial indexes for the rows the sweeper and a new push look for (unread, orphaned)

Revision ID: d2e8f1a3c5b7
Revises: b7c1e2d3f4a5
Create Date: 2026-11-24

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd2e8f1a3c5b7'
down_revision = 'b7c1e2d3f4a5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_callbacks_outcome_received')
        batch_op.drop_index('ix_callbacks_provider_id')
    unread, orphan = sa.text("outcome = 'received'"), sa.text("outcome = 'orphan'")
    op.create_index('ix_callbacks_unread', 'callbacks', ['received_at'], postgresql_where=unread, sqlite_where=unread)
    op.create_index('ix_callbacks_orphans', 'callbacks', ['provider_id'], postgresql_where=orphan, sqlite_where=orphan)


def downgrade():
    op.drop_index('ix_callbacks_orphans', table_name='callbacks')
    op.drop_index('ix_callbacks_unread', table_name='callbacks')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_callbacks_provider_id', ['provider_id'], unique=False)
        batch_op.create_index('ix_callbacks_outcome_received', ['outcome', 'received_at'], unique=False)
