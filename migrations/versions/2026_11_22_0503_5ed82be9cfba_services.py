"""Add services: Snowpark Container Services services and job services with their specifications.

Why: `EXECUTE JOB SERVICE` and `CREATE SERVICE ... FROM SPECIFICATION` run a user's containers
(issue 10). A `services` row holds the parsed specification, status, exit code and endpoints; a job
service also has a `jobs` row (`job_id`) so it is listed and logged like a batch job, and a
long-running service logs to `service_logs`; `service_functions` holds the SQL functions that send
rows to a service endpoint.
Rollout risk: none. New tables; nothing existing changes.

Revision ID: 5ed82be9cfba
Revises: ce9ac0d55fcb
Create Date: 2026-11-22 05:03:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5ed82be9cfba"
down_revision: str | None = "ce9ac0d55fcb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("compute_pool", sa.String(length=255), nullable=False),
        sa.Column("specification", sa.JSON(), nullable=False),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("containers", sa.JSON(), nullable=False),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("min_instances", sa.Integer(), nullable=False),
        sa.Column("max_instances", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_services_schema_id_schemas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_services_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_services_schema_id_name")),
    )
    op.create_table(
        "service_logs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("container", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_service_logs_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_logs")),
    )
    op.create_index(
        "ix_service_logs_service_container", "service_logs", ["service_id", "container", "id"], unique=False
    )
    op.create_table(
        "service_functions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("returns", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=767), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("max_batch_rows", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["schemas.id"],
            name=op.f("fk_service_functions_schema_id_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_functions")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_service_functions_schema_id_name")),
    )


def downgrade() -> None:
    op.drop_table("service_functions")
    op.drop_index("ix_service_logs_service_container", table_name="service_logs")
    op.drop_table("service_logs")
    op.drop_table("services")
