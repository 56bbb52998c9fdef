"""Add workers, external stage locations and credentials, and shard dispatch times.

Why: the cluster stack. Workers on other hosts register and heartbeat; stages may point at
S3 buckets with their own (encrypted) credentials; a shard remembers when it was last sent to a
broker, so one lost with a restarted broker is sent again.
Rollout risk: small. New nullable columns and a new table; SQLite copies the stages and shards
tables (batch mode), which briefly locks them.

Revision ID: b0ecac50da68
Revises: 5330c64aec24
Create Date: 2026-11-21 20:46:29.197458
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b0ecac50da68"
down_revision: str | None = "5330c64aec24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pools", sa.JSON(), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("cpus", sa.Integer(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("shards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("endpoint", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("region", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("credentials", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_column("credentials")
        batch_op.drop_column("region")
        batch_op.drop_column("endpoint")
        batch_op.drop_column("url")

    with op.batch_alter_table("shards", schema=None) as batch_op:
        batch_op.drop_column("dispatched_at")

    op.drop_table("workers")
