"""datasets built from traffic (status, progress, error); completions' user metadata

Revision ID: 0004_curate
Revises: 0003_jobs
Create Date: 2026-12-04 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_curate"
down_revision = "0003_jobs"
branch_labels = ("curate",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), server_default="READY", nullable=False))
        batch_op.add_column(sa.Column("processed_lines", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("total_lines", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_metadata", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_column("user_metadata")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("total_lines")
        batch_op.drop_column("processed_lines")
        batch_op.drop_column("status")
