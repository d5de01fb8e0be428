"""A/B evaluation history

Revision ID: 0003_ab_tests
Revises: 0002_ab_tests
Create Date: 2026-11-29 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_ab_tests"
down_revision = "0002_ab_tests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ab_evaluations",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("feedbacks", sa.Integer(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("winner_model_id", sa.Uuid(), nullable=True),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("sample_ratio_p_value", sa.Float(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["ab_campaigns.id"],
            name=op.f("fk_ab_evaluations_campaign_id_ab_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_evaluations")),
    )
    with op.batch_alter_table("ab_evaluations", schema=None) as batch_op:
        batch_op.create_index("ix_ab_evaluations_campaign_created", ["campaign_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ab_evaluations_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ab_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ab_evaluations_created_at"))
        batch_op.drop_index("ix_ab_evaluations_campaign_created")
    op.drop_table("ab_evaluations")
