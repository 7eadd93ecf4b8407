"""payments.attempts: how many attempts of a B2C payout were sent (each its own OriginatorConversationID)

Revision ID: f1b2c3d4e5a6
Revises: e4f7a9c2d1b8
Create Date: 2026-11-24

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1b2c3d4e5a6'
down_revision = 'e4f7a9c2d1b8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('attempts')
