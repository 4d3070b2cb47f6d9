"""The trigger index (issue 11, item 5), filled from every live pipeline already saved.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.store.trigger_index import index_entries

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index = op.create_table(
        "trigger_index",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("application", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_trigger_index_key", "trigger_index", ["key"])
    op.create_index("ix_trigger_index_pipeline", "trigger_index", ["application", "name"])
    # Backfill: the live (latest, not deleted) revision of every pipeline, as PipelineStore.save files it.
    live = op.get_bind().execute(
        sa.text(
            "SELECT r.application, r.name, r.revision, r.config FROM pipeline_revisions r"
            " JOIN (SELECT application, name, MAX(revision) AS rev FROM pipeline_revisions"
            "       GROUP BY application, name) latest"
            " ON r.application = latest.application AND r.name = latest.name AND r.revision = latest.rev"
            " WHERE NOT r.deleted"
        )
    )
    rows = []
    for application, name, rev, config in live:
        try:
            parsed = json.loads(config)
        except ValueError:
            continue
        for kind, key in index_entries(parsed if isinstance(parsed, dict) else {}):
            rows.append({"kind": kind, "key": key, "application": application, "name": name, "revision": rev})
    if rows:
        op.bulk_insert(index, rows)


def downgrade() -> None:
    op.drop_table("trigger_index")
