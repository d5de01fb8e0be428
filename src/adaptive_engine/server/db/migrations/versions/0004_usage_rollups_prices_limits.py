"""usage roll-ups, model prices, cost per completion, limits, API key scope

Revision ID: 0004_usage
Revises: 0003_feedback
Create Date: 2026-12-04 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_usage"
down_revision = "0003_feedback"
branch_labels = ("usage",)
depends_on = None

LATENCY_COLUMNS = [f"latency_b{i:02d}" for i in range(18)]


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        for column in ("price_input", "price_output", "price_cached_input"):
            batch_op.add_column(sa.Column(column, sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("cost", sa.Float(), nullable=True))
    with op.batch_alter_table("inference_errors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("allowed_models", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("use_case_ids", sa.JSON(), nullable=True))

    op.create_table(
        "usage_rollups",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in LATENCY_COLUMNS],
        sa.ForeignKeyConstraint(
            ["use_case_id"], ["use_cases.id"], name=op.f("fk_usage_rollups_use_case_id_use_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "period", "bucket", "use_case_id", "model_key", "api_key_id", "user_id", name=op.f("pk_usage_rollups")
        ),
    )
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_usage_rollups_key_period", ["api_key_id", "period", "bucket"], unique=False)
        batch_op.create_index("ix_usage_rollups_user_period", ["user_id", "period", "bucket"], unique=False)
        batch_op.create_index("ix_usage_rollups_period_bucket", ["period", "bucket"], unique=False)

    op.create_table(
        "usage_limits",
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("tokens_per_minute", sa.BigInteger(), nullable=True),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("budget_daily", sa.Float(), nullable=True),
        sa.Column("budget_monthly", sa.Float(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_limits")),
        sa.UniqueConstraint("scope", "subject_id", name=op.f("uq_usage_limits_scope")),
    )
    with op.batch_alter_table("usage_limits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_limits_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("usage_limits")
    op.drop_table("usage_rollups")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        for column in ("use_case_ids", "allowed_models", "expires_at"):
            batch_op.drop_column(column)
    with op.batch_alter_table("inference_errors", schema=None) as batch_op:
        batch_op.drop_column("user_id")
        batch_op.drop_column("api_key_id")
    with op.batch_alter_table("completions", schema=None) as batch_op:
        for column in ("cost", "user_id", "api_key_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("models", schema=None) as batch_op:
        for column in ("price_cached_input", "price_output", "price_input"):
            batch_op.drop_column(column)
