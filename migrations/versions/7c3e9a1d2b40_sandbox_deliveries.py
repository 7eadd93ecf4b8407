"""sandbox: one delivery record per callback copy and attempt; callback URLs encrypted

Revision ID: 7c3e9a1d2b40
Revises: 9c3e1f0a7b21
Create Date: 2026-11-24

"""
import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet
from flask import current_app

revision = '7c3e9a1d2b40'
down_revision = '9c3e1f0a7b21'
branch_labels = None
depends_on = None


def _fernet() -> Fernet:
    return Fernet(current_app.config["ENCRYPTION_KEY"].encode())


def upgrade():
    op.create_table(
        'sandbox_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('target', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=True),
        sa.Column('copy', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('lost_attempts', sa.Integer(), nullable=False),
        sa.Column('backoff', sa.Float(), nullable=False),
        sa.Column('not_before', sa.DateTime(), nullable=False),
        sa.Column('reorder_group', sa.String(length=32), nullable=True),
        sa.Column('reorder_position', sa.Integer(), nullable=True),
        sa.Column('last_outcome', sa.String(length=255), nullable=True),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_deliveries')),
    )
    with op.batch_alter_table('sandbox_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_deliveries_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_sandbox_deliveries_reorder_group'), ['reorder_group'], unique=False)

    op.create_table(
        'sandbox_delivery_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=255), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['delivery_id'], ['sandbox_deliveries.id'],
                                name=op.f('fk_sandbox_delivery_attempts_delivery_id_sandbox_deliveries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_delivery_attempts')),
    )
    with op.batch_alter_table('sandbox_delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_delivery_attempts_delivery_id'), ['delivery_id'], unique=False)

    with op.batch_alter_table('sandbox_stk_requests', schema=None) as batch_op:
        batch_op.drop_column('last_delivery')

    # Callback URLs carry the receiver's callback token: encrypt the ones already stored.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, callback_url FROM sandbox_stk_requests")).fetchall()
    fernet = _fernet() if rows else None
    for row_id, url in rows:
        conn.execute(sa.text("UPDATE sandbox_stk_requests SET callback_url = :url WHERE id = :id"),
                     {"url": fernet.encrypt(url.encode()).decode(), "id": row_id})


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, callback_url FROM sandbox_stk_requests")).fetchall()
    fernet = _fernet() if rows else None
    for row_id, url in rows:
        conn.execute(sa.text("UPDATE sandbox_stk_requests SET callback_url = :url WHERE id = :id"),
                     {"url": fernet.decrypt(url.encode()).decode(), "id": row_id})

    with op.batch_alter_table('sandbox_stk_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_delivery', sa.String(length=255), nullable=True))

    with op.batch_alter_table('sandbox_delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_delivery_attempts_delivery_id'))
    op.drop_table('sandbox_delivery_attempts')
    with op.batch_alter_table('sandbox_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_deliveries_reorder_group'))
        batch_op.drop_index(batch_op.f('ix_sandbox_deliveries_subject'))
    op.drop_table('sandbox_deliveries')
