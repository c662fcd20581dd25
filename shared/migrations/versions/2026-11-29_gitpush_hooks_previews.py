"""Deploy on git push and preview deployments: a hook secret per repository (encrypted), the commit a push last
deployed, whether previews may have the repository's secrets, previews as repositories of their own (the pull
request's checkout) and the deliveries seen, so a repeated delivery does nothing.

Revision ID: gitpush_20261129
Revises: events_20261129
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "gitpush_20261129"
down_revision = "events_20261129"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repositories", sa.Column("hook_secret_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("repositories", sa.Column("deploy_sha", sa.String(64), nullable=True))
    op.add_column(
        "repositories",
        sa.Column("preview_secrets", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "repositories",
        sa.Column("preview_of", sa.BigInteger(), sa.ForeignKey("repositories.id", ondelete="CASCADE"), nullable=True),
    )
    op.add_column("repositories", sa.Column("preview_number", sa.Integer(), nullable=True))
    op.create_index("uq_repositories_preview", "repositories", ["preview_of", "preview_number"], unique=True,
                    postgresql_where=sa.text("preview_of IS NOT NULL"))
    op.create_table(
        "git_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "repository_id", sa.BigInteger(), sa.ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("repository_id", "delivery_id", name="uq_git_deliveries_repository_delivery"),
    )


def downgrade() -> None:
    op.drop_table("git_deliveries")
    op.drop_index("uq_repositories_preview", table_name="repositories")
    for column in ("preview_number", "preview_of", "preview_secrets", "deploy_sha", "hook_secret_encrypted"):
        op.drop_column("repositories", column)
