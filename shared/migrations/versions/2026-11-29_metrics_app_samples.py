"""Per-app usage history: one row per compose service of a running deployment per sampling round.

Revision ID: metrics_20261129
Revises: generated_secrets_2026_11_29
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "metrics_20261129"
down_revision = "generated_secrets_2026_11_29"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_samples",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "deployment_id", sa.BigInteger(), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("memory_mb", sa.Float(), nullable=True),
        sa.Column("network_rx_bytes", sa.BigInteger(), nullable=True),
        sa.Column("network_tx_bytes", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("deployment_id", "service", "sampled_at", name="uq_app_samples_round"),
    )
    op.create_index("ix_app_samples_deployment_time", "app_samples", ["deployment_id", "sampled_at"])


def downgrade() -> None:
    op.drop_index("ix_app_samples_deployment_time", table_name="app_samples")
    op.drop_table("app_samples")
