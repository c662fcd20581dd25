"""generated database passwords kept encrypted on the deployment, no longer literal in its compose file

Revision ID: generated_secrets_2026_11_29
Revises: auth_2026_11_29
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "generated_secrets_2026_11_29"
down_revision = "auth_2026_11_29"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("generated_secrets", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    op.drop_column("deployments", "generated_secrets")
