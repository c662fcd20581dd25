"""repositories, deployments and the deployment_events timeline

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

PORT_HOLDING = "status IN ('queued', 'building', 'starting', 'running', 'stopping')"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("branch", sa.String(255)),
        sa.Column("detection", postgresql.JSONB()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("path", name="uq_repositories_path"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("repo_name", sa.String(255), nullable=False),
        sa.Column("stack", sa.String(64)),
        sa.Column("framework", sa.String(64)),
        sa.Column("package_manager", sa.String(64)),
        sa.Column("app_path", sa.Text(), server_default="", nullable=False),
        sa.Column("confidence_score", sa.Integer()),
        sa.Column("internal_port", sa.Integer()),
        sa.Column("detected_db", sa.String(64)),
        sa.Column("assigned_port", sa.Integer()),
        sa.Column("requested_port", sa.Integer()),
        sa.Column("domain", sa.String(255)),
        sa.Column("status", sa.String(32), server_default="pending", nullable=False),
        sa.Column("docker_path", sa.Text()),
        sa.Column("dockerfile_content", sa.Text()),
        sa.Column("compose_content", sa.Text()),
        sa.Column("dockerignore_content", sa.Text()),
        sa.Column("error_message", sa.Text()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("image_id", sa.String(128)),
        sa.Column("image_tag", sa.String(255)),
        sa.Column("build_seconds", sa.Float()),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("container_id", sa.String(128)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_deployments_repository_id_repositories",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_deployments_repository_id", "deployments", ["repository_id"])
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.create_index("ix_deployments_assigned_port", "deployments", ["assigned_port"])
    op.create_index(
        "uq_deployments_active_port",
        "deployments",
        ["assigned_port"],
        unique=True,
        postgresql_where=sa.text(PORT_HOLDING),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("deployment_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_events_deployment_id_deployments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_deployment_events_deployment_id", "deployment_events", ["deployment_id", "id"])


def downgrade() -> None:
    op.drop_table("deployment_events")
    op.drop_table("deployments")
    op.drop_table("repositories")
