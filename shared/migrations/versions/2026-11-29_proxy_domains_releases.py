"""proxy: a deployment's domains (unique across deployments), its proxy upstream, and releases (image plus
configuration of each successful start, for a rollback that restores both)

Revision ID: proxy_20261129
Revises: fleet_2026_11_29
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "proxy_20261129"
down_revision = "fleet_2026_11_29"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("upstream", sa.String(255)))
    op.create_table(
        "deployment_domains",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("deployment_id", sa.BigInteger, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("uq_deployment_domains_name", "deployment_domains", ["name"], unique=True)
    op.create_index("ix_deployment_domains_deployment_id", "deployment_domains", ["deployment_id"])
    op.create_table(
        "deployment_releases",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("deployment_id", sa.BigInteger, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_tag", sa.String(255), nullable=False),
        sa.Column("dockerfile_content", sa.Text),
        sa.Column("compose_content", sa.Text),
        sa.Column("dockerignore_content", sa.Text),
        sa.Column("cpu_limit", sa.Float),
        sa.Column("memory_limit", sa.String(32)),
        sa.Column("env", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_deployment_releases_deployment_id", "deployment_releases", ["deployment_id", "id"])


def downgrade() -> None:
    op.drop_table("deployment_releases")
    op.drop_table("deployment_domains")
    op.drop_column("deployments", "upstream")
