"""hourly roll-ups of traffic and feedback, failed gateway calls

Revision ID: 0003_feedback
Revises: 0002_feedback
Create Date: 2026-11-29 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_feedback"
down_revision = "0002_feedback"
branch_labels = None
depends_on = None


def _hour(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"(CAST(floor(extract(epoch FROM {column})) AS BIGINT) / 3600 * 3600)"
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 3600 * 3600)"


def upgrade() -> None:
    op.create_table(
        "inference_errors",
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=True),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["use_case_id"],
            ["use_cases.id"],
            name=op.f("fk_inference_errors_use_case_id_use_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_errors")),
    )
    with op.batch_alter_table("inference_errors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_errors_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_inference_errors_use_case_created", ["use_case_id", "created_at"], unique=False)

    op.create_table(
        "traffic_hourly",
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("interactions", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_max_ms", sa.Float(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["use_case_id"], ["use_cases.id"], name=op.f("fk_traffic_hourly_use_case_id_use_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("use_case_id", "hour", "model_key", name=op.f("pk_traffic_hourly")),
    )
    op.create_table(
        "feedback_hourly",
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.Column("metric_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_sq", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["metric_id"], ["metrics.id"], name=op.f("fk_feedback_hourly_metric_id_metrics"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["use_case_id"], ["use_cases.id"], name=op.f("fk_feedback_hourly_use_case_id_use_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("use_case_id", "metric_id", "hour", "model_key", name=op.f("pk_feedback_hourly")),
    )
    # A time series reads the edges of its range from the rows: by use case (and key) and time.
    with op.batch_alter_table("feedbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_feedbacks_use_case_metric")
        batch_op.create_index(
            "ix_feedbacks_use_case_metric_created", ["use_case_id", "metric_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_feedbacks_use_case_created", ["use_case_id", "created_at"], unique=False)

    # What was stored before this revision, rolled up once.
    op.execute(
        "INSERT INTO traffic_hourly (use_case_id, hour, model_key, interactions, prompt_tokens, completion_tokens, "
        "latency_count, latency_sum_ms, latency_max_ms, errors) "
        f"SELECT use_case_id, {_hour('created_at')}, COALESCE(model_key, ''), COUNT(*),"
        " COALESCE(SUM(prompt_tokens), 0), "
        "COALESCE(SUM(completion_tokens), 0), COUNT(latency_ms), COALESCE(SUM(latency_ms), 0), "
        "COALESCE(MAX(latency_ms), 0), 0 FROM completions GROUP BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO feedback_hourly (use_case_id, metric_id, hour, model_key, count, total, total_sq, min_value, "
        f"max_value) SELECT f.use_case_id, f.metric_id, {_hour('f.created_at')}, COALESCE(c.model_key, ''), COUNT(*), "
        "SUM(f.value), SUM(f.value * f.value), MIN(f.value), MAX(f.value) FROM feedbacks f "
        "JOIN completions c ON c.id = f.completion_id GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    with op.batch_alter_table("feedbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_feedbacks_use_case_created")
        batch_op.drop_index("ix_feedbacks_use_case_metric_created")
        batch_op.create_index("ix_feedbacks_use_case_metric", ["use_case_id", "metric_id"], unique=False)
    op.drop_table("feedback_hourly")
    op.drop_table("traffic_hourly")
    with op.batch_alter_table("inference_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_inference_errors_use_case_created")
        batch_op.drop_index(batch_op.f("ix_inference_errors_created_at"))
    op.drop_table("inference_errors")
