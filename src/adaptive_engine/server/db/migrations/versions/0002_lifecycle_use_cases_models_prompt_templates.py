"""use case archive and settings, model flags, system prompt templates

Revision ID: 0002_lifecycle
Revises: 0001_core
Create Date: 2026-12-04 20:34:25.700071

Existing rows: not archived, not published nor stable, no appearance nor settings.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_lifecycle"
down_revision = "0001_core"
branch_labels = ("lifecycle",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_prompt_templates",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_system_prompt_templates_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_prompt_templates")),
    )
    with op.batch_alter_table("system_prompt_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_prompt_templates_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_system_prompt_templates_family_id"), ["family_id"], unique=False)

    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_prompt_template_id", sa.Uuid(), nullable=True))

    with op.batch_alter_table("model_services", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("system_prompt_template_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_model_services_system_prompt_template_id_system_prompt_templates"),
            "system_prompt_templates",
            ["system_prompt_template_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_published", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("is_stable", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_archived", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("appearance", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("settings", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.drop_column("settings")
        batch_op.drop_column("appearance")
        batch_op.drop_column("is_archived")

    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("is_stable")
        batch_op.drop_column("is_published")

    with op.batch_alter_table("model_services", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_model_services_system_prompt_template_id_system_prompt_templates"), type_="foreignkey"
        )
        batch_op.drop_column("system_prompt_template_id")
        batch_op.drop_column("name")

    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_column("system_prompt_template_id")

    with op.batch_alter_table("system_prompt_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_prompt_templates_family_id"))
        batch_op.drop_index(batch_op.f("ix_system_prompt_templates_created_at"))

    op.drop_table("system_prompt_templates")
