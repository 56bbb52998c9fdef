"""Add file formats: named CSV / JSON / PARQUET formats in a schema (CREATE FILE FORMAT).

Why: SELECT ... FROM @stage (FILE_FORMAT => 'name') and COPY INTO @stage (issue 8).
Rollout risk: none. A new table; nothing existing changes.

Revision ID: c35ad843bd5c
Revises: ffef05a5fd6a
Create Date: 2026-11-22 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c35ad843bd5c"
down_revision: str | None = "ffef05a5fd6a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_formats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("format_type", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_file_formats_schema_id_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_formats")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_file_formats_schema_id_name")),
    )


def downgrade() -> None:
    op.drop_table("file_formats")
