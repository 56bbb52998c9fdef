"""Add tables: Parquet data under the control plane's storage, registered by name in a schema.

Why: save_as_table / session.table / SELECT ... FROM <table> (issue 8).
Rollout risk: none. A new table; nothing existing changes.

Revision ID: 5eeb49baa16a
Revises: b0ecac50da68
Create Date: 2026-11-21 23:58:35.240312
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5eeb49baa16a"
down_revision: str | None = "b0ecac50da68"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(length=2048), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_tables_schema_id_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tables")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_tables_schema_id_name")),
    )


def downgrade() -> None:
    op.drop_table("tables")
