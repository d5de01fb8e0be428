"""completion tool calls

Revision ID: 0002_inference
Revises: 0001_core
Create Date: 2026-12-01 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_inference"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The tool calls of an answer served by the gateway (null for plain text answers and older rows).
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool_calls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_column("tool_calls")
