"""The tables of the create_all era: pipeline revisions and API tokens.

Creates only the tables that are missing, so a database made by earlier versions' `create_all` is
adopted as it is (rows untouched) and merely gets this revision recorded.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "pipeline_revisions" not in existing:
        op.create_table(
            "pipeline_revisions",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("application", sa.String(63), nullable=False),
            sa.Column("name", sa.String(63), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("config", sa.Text(), nullable=False),
            sa.Column("deleted", sa.Boolean(), nullable=False),
            sa.Column("author", sa.String(255), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("application", "name", "revision"),
        )
        op.create_index("ix_pipeline_revisions_application", "pipeline_revisions", ["application"])
    if "api_tokens" not in existing:
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("subject", sa.String(255), nullable=False),
            sa.Column("groups", sa.Text(), nullable=False),
            sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_by", sa.String(255), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        )
        op.create_index("ix_api_tokens_subject", "api_tokens", ["subject"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("pipeline_revisions")
