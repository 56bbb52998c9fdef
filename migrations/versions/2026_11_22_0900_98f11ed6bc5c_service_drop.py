"""Add services.dropping: a service being stopped is dropped once stopped, or kept (job.cancel()).

Why: `job.cancel()` of a job service now stops its containers and keeps the service, CANCELLED,
with its logs (as Snowflake's), while DROP SERVICE and `delete_job()` stop it and then remove it.
Both go through CANCELLING while the worker stops the containers; this flag says which end follows.
Until now only DROP SERVICE led to CANCELLING, so rows already CANCELLING are marked dropping.
Rollout risk: low. One boolean column with a server default (SQLite rebuilds the table in batch
mode; Postgres adds it without rewriting the table) and an UPDATE of the few stopping rows.

Revision ID: 98f11ed6bc5c
Revises: 23e43d1910e5
Create Date: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "98f11ed6bc5c"
down_revision: str | None = "23e43d1910e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("dropping", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        sa.text("UPDATE services SET dropping = :yes WHERE status = 'CANCELLING'").bindparams(yes=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("dropping")
