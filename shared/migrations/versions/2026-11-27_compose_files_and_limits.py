"""compose file list and app service (repos that bring their own compose), image size, previous image
(rollback), resource limits

Revision ID: 0002_compose_files
Revises: 0001_initial
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_compose_files"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Relative to the app directory, in `docker compose -f` order; Portside's own file comes last.
    op.add_column(
        "deployments",
        sa.Column(
            "compose_files",
            postgresql.JSONB(),
            server_default=sa.text("'[\".deployment/docker-compose.yml\"]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("deployments", sa.Column("app_service", sa.String(128), server_default="app", nullable=False))
    op.add_column("deployments", sa.Column("image_size_bytes", sa.BigInteger()))
    op.add_column("deployments", sa.Column("previous_image_tag", sa.String(255)))
    op.add_column("deployments", sa.Column("cpu_limit", sa.Float()))
    op.add_column("deployments", sa.Column("memory_limit", sa.String(32)))


def downgrade() -> None:
    for column in (
        "memory_limit",
        "cpu_limit",
        "previous_image_tag",
        "image_size_bytes",
        "app_service",
        "compose_files",
    ):
        op.drop_column("deployments", column)
