"""Detections get their own table (typed, versioned, one row per repository and app path, written atomically)
instead of the repositories.detection JSONB merged by read-modify-write; dead deployment states and the
unused `domain` column go.

Revision ID: house_20261129
Revises: 0003_running_image
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "house_20261129"
down_revision = "0003_running_image"
branch_labels = None
depends_on = None

DEAD_STATES = "('pending', 'detecting', 'detected')"


def upgrade() -> None:
    op.create_table(
        "detections",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "repository_id", sa.BigInteger(), sa.ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("app_path", sa.Text(), server_default="", nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("repository_id", "app_path", name="uq_detections_repository_app_path"),
    )
    # Each stored app path's detection moves to its own row, as schema version 1.
    op.execute(
        "INSERT INTO detections (repository_id, app_path, schema_version, result) "
        "SELECT r.id, d.key, 1, d.value FROM repositories r, jsonb_each(r.detection) d "
        "WHERE r.detection IS NOT NULL AND jsonb_typeof(r.detection) = 'object'"
    )
    op.drop_column("repositories", "detection")

    # Nothing enters these states any more; a row still in one is settled as an error that says so.
    op.execute(
        f"UPDATE deployments SET status = 'error', error_code = 'STUCK', "
        f"error_message = 'left in a state Portside no longer has; generate again' WHERE status IN {DEAD_STATES}"
    )
    op.alter_column("deployments", "status", server_default="generating")
    op.drop_column("deployments", "domain")


def downgrade() -> None:
    op.add_column("deployments", sa.Column("domain", sa.String(255)))
    op.alter_column("deployments", "status", server_default="pending")
    op.add_column("repositories", sa.Column("detection", postgresql.JSONB()))
    op.execute(
        "UPDATE repositories r SET detection = d.merged FROM ("
        "SELECT repository_id, jsonb_object_agg(app_path, result) AS merged FROM detections GROUP BY repository_id"
        ") d WHERE d.repository_id = r.id"
    )
    op.drop_table("detections")
