"""isp: clients and internet packages (UUID ids), payments.uid, the simulator's STK query count

Revision ID: a4c9e1f7b302
Revises: d2e8f1a3c5b7
Create Date: 2026-11-25

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "a4c9e1f7b302"
down_revision = "d2e8f1a3c5b7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "isp_clients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_isp_clients_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_isp_clients")),
    )
    with op.batch_alter_table("isp_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_isp_clients_merchant_id"), ["merchant_id"], unique=False)

    op.create_table(
        "internet_packages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="KES", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_internet_packages_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_internet_packages")),
    )
    with op.batch_alter_table("internet_packages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_internet_packages_merchant_id"), ["merchant_id"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_payments_uid"), ["uid"])

    with op.batch_alter_table("sandbox_stk_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queries", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("sandbox_stk_requests", schema=None) as batch_op:
        batch_op.drop_column("queries")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_payments_uid"), type_="unique")
        batch_op.drop_column("uid")

    with op.batch_alter_table("internet_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_internet_packages_merchant_id"))
    op.drop_table("internet_packages")

    with op.batch_alter_table("isp_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_isp_clients_merchant_id"))
    op.drop_table("isp_clients")
