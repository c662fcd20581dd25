"""Per-minute limits move from the API process into PostgreSQL (rate_limit_hits), so they hold across API
replicas; repositories remember the commit their clone is at (commit_sha), so a worker on another machine fetches
exactly that commit.

Revision ID: fleet_2026_11_29
Revises: gitpush_20261129
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_2026_11_29"
down_revision = "gitpush_20261129"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.clock_timestamp(), nullable=False),
    )
    op.create_index("ix_rate_limit_hits_key_at", "rate_limit_hits", ["key", "at"])
    op.add_column("repositories", sa.Column("commit_sha", sa.String(64)))


def downgrade() -> None:
    op.drop_column("repositories", "commit_sha")
    op.drop_index("ix_rate_limit_hits_key_at", table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
