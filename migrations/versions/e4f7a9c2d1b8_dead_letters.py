"""dead_letters: jobs that failed for good, with their error and retry bookkeeping

Revision ID: e4f7a9c2d1b8
Revises: e4b1c7d9a2f6
Create Date: 2026-11-25

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "e4f7a9c2d1b8"
down_revision = 'e4b1c7d9a2f6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("func", sa.String(length=255), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("error_type", sa.String(length=255), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.Column("retried_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_dead_letters_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_dead_letters_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_merchant_created", ["merchant_id", "created_at"], unique=False)
        batch_op.create_index("ix_dead_letters_merchant_failed", ["merchant_id", "failed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dead_letters_payment_id"), ["payment_id"], unique=False)
    open_rows = sa.text("status <> 'resolved'")
    op.create_index(
        "uq_dead_letters_open_fingerprint",
        "dead_letters",
        ["fingerprint"],
        unique=True,
        postgresql_where=open_rows,
        sqlite_where=open_rows,
    )


def downgrade():
    op.drop_index("uq_dead_letters_open_fingerprint", table_name="dead_letters")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_payment_id"))
        batch_op.drop_index("ix_dead_letters_merchant_failed")
        batch_op.drop_index("ix_dead_letters_merchant_created")
    op.drop_table("dead_letters")
