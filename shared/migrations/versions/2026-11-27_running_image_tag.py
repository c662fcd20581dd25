"""running_image_tag: the image of the last successful start, for automatic fallback and rollback

Revision ID: 0003_running_image
Revises: 0002_compose_files
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_running_image"
down_revision = "0002_compose_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("running_image_tag", sa.String(255)))


def downgrade() -> None:
    op.drop_column("deployments", "running_image_tag")
