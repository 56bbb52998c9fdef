"""Add image_repositories: the namespaces of the cluster's OCI registry (CREATE IMAGE REPOSITORY).

Why: issue 10 asks for image repositories backed by a real registry, with the control plane's
tokens as credentials. A row names a repository in a schema; the registry token route grants push
and pull on `<db>/<schema>/<repository>/...` only for repositories that have a row, so the
registry accepts no push to a path nobody created. `grants.image_repository_id` holds GRANT READ /
WRITE ON IMAGE REPOSITORY.
Rollout risk: low. A new table, and a nullable column added to `grants` (SQLite rebuilds the table
in batch mode; Postgres adds the column without rewriting it).

Revision ID: 23e43d1910e5
Revises: 5ed82be9cfba
Create Date: 2026-11-22 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "23e43d1910e5"
down_revision: str | None = "5ed82be9cfba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["schemas.id"],
            name=op.f("fk_image_repositories_schema_id_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_repositories")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_image_repositories_schema_id_name")),
    )
    # GRANT READ | WRITE ON IMAGE REPOSITORY: a grant row names its repository (and goes with it).
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("image_repository_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_grants_image_repository_id_image_repositories"),
            "image_repositories",
            ["image_repository_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_constraint(op.f("fk_grants_image_repository_id_image_repositories"), type_="foreignkey")
        batch.drop_column("image_repository_id")
    op.drop_table("image_repositories")
