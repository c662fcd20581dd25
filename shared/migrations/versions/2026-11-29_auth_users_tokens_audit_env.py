"""auth: users, refresh and API tokens, audit events, owners on repositories and deployments, per-deployment env

Revision ID: auth_2026_11_29
Revises: 0003_running_image
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_2026_11_29"
down_revision = "0003_running_image"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("email", sa.String(320)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("detail", sa.Text),
        sa.Column("ip", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id"])
    for table in ("repositories", "deployments"):
        op.add_column(table, sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL")))
        op.create_index(f"ix_{table}_owner_id", table, ["owner_id"])
    op.create_table(
        "deployment_env",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("deployment_id", sa.BigInteger, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("secret", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("build", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_index("uq_deployment_env_key", "deployment_env", ["deployment_id", "key"], unique=True)


def downgrade() -> None:
    op.drop_table("deployment_env")
    for table in ("deployments", "repositories"):
        op.drop_index(f"ix_{table}_owner_id", table)
        op.drop_column(table, "owner_id")
    op.drop_table("audit_events")
    op.drop_table("api_tokens")
    op.drop_table("refresh_tokens")
    op.drop_table("users")
