"""Users, roles, grants and token ownership (issue 7).

Adds users (scrypt password hashes, a default role), roles, their grants to users, privilege
grants on models, compute pools and stages, future grants per schema, and the owner of each
API token. Seeds the built-in roles ACCOUNTADMIN and PUBLIC and the ``admin`` user, which
takes over every existing admin token.

Revision ID: 8dd94d4b11c9
Revises: c35ad843bd5c
Create Date: 2026-11-22 05:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "8dd94d4b11c9"
down_revision: str | None = "c35ad843bd5c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("default_role", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    user_roles = op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_user_roles_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("privilege", sa.String(length=32), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("compute_pool_id", sa.Integer(), nullable=True),
        sa.Column("stage_id", sa.Integer(), nullable=True),
        sa.Column("granted_by", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["compute_pool_id"],
            ["compute_pools.id"],
            name=op.f("fk_grants_compute_pool_id_compute_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_grants_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_grants_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_grants_stage_id_stages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grants_role_id"), ["role_id"], unique=False)
    op.create_table(
        "future_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("privilege", sa.String(length=32), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("granted_by", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_future_grants_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_future_grants_schema_id_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_future_grants")),
        sa.UniqueConstraint(
            "schema_id",
            "object_type",
            "privilege",
            "role_id",
            name=op.f("uq_future_grants_schema_id_object_type_privilege_role_id"),
        ),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_user_id_users"), "users", ["user_id"], ["id"], ondelete="CASCADE"
        )

    # The built-in roles and the admin user; every admin token minted so far becomes admin's.
    now = datetime.now(UTC)
    op.bulk_insert(
        roles,
        [
            {
                "id": 1,
                "name": "ACCOUNTADMIN",
                "comment": "Every privilege on every object.",
                "created_on": now,
            },
            {"id": 2, "name": "PUBLIC", "comment": "Granted to every user.", "created_on": now},
        ],
    )
    op.bulk_insert(users, [{"id": 1, "name": "admin", "default_role": "ACCOUNTADMIN", "created_on": now}])
    op.bulk_insert(user_roles, [{"user_id": 1, "role_id": 1}, {"user_id": 1, "role_id": 2}])
    op.execute("UPDATE api_tokens SET user_id = 1 WHERE role = 'ADMIN'")
    if op.get_bind().dialect.name == "postgresql":
        # Rows inserted with explicit ids: move the sequences past them.
        op.execute("SELECT setval('users_id_seq', (SELECT MAX(id) FROM users))")
        op.execute("SELECT setval('roles_id_seq', (SELECT MAX(id) FROM roles))")


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_user_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_column("user_id")
    op.drop_table("future_grants")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_role_id"))
        batch_op.drop_index(batch_op.f("ix_grants_model_id"))
    op.drop_table("grants")
    op.drop_table("user_roles")
    op.drop_table("roles")
    op.drop_table("users")
