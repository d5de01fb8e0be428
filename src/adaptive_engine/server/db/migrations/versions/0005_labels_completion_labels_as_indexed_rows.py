"""completion labels as indexed rows (completion_labels), filled from the completions' labels

Revision ID: 0005_labels
Revises: 0004_curate
Create Date: 2026-12-05 00:19:39.561245
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0005_labels"
down_revision = "0004_curate"
branch_labels = None
depends_on = None

# Completions read per round trip of the backfill (keyset pages: no cursor held open while writing).
PAGE = 10_000


def _digest(text: str) -> str:
    # The digest of domains/interactions/labels.py (a migration keeps its own copy: it must not change).
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _label_rows(completion_id, use_case_id, labels):  # noqa: ANN001, ANN202
    rows = []
    for key, value in (labels or {}).items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        rows.append(
            {
                "completion_id": completion_id,
                "use_case_id": use_case_id,
                "key_digest": _digest(str(key)),
                "value_digest": _digest(text),
            }
        )
    return rows


def upgrade() -> None:
    label_table = op.create_table(
        "completion_labels",
        sa.Column("completion_id", sa.Uuid(), nullable=False),
        sa.Column("key_digest", sa.String(length=32), nullable=False),
        sa.Column("value_digest", sa.String(length=32), nullable=False),
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["completion_id"],
            ["completions.id"],
            name=op.f("fk_completion_labels_completion_id_completions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("completion_id", "key_digest", name=op.f("pk_completion_labels")),
    )
    completions = sa.table(
        "completions", sa.column("id", sa.Uuid()), sa.column("use_case_id", sa.Uuid()), sa.column("labels", sa.JSON())
    )
    connection = op.get_bind()
    last = None
    while True:
        query = sa.select(completions.c.id, completions.c.use_case_id, completions.c.labels)
        if last is not None:
            query = query.where(completions.c.id > last)
        page = connection.execute(query.order_by(completions.c.id).limit(PAGE)).all()
        if not page:
            break
        rows = [row for c in page for row in _label_rows(c.id, c.use_case_id, c.labels)]
        if rows:
            connection.execute(label_table.insert(), rows)
        last = page[-1].id
    # The index once the rows are in: one sort instead of an index update per row.
    op.create_index(
        "ix_completion_labels_lookup",
        "completion_labels",
        ["use_case_id", "key_digest", "value_digest", "completion_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_completion_labels_lookup", table_name="completion_labels")
    op.drop_table("completion_labels")
