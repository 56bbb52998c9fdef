"""Add model monitors and their computed metrics (issue 11).

Why: Snowflake's ML Observability (``Registry.add_monitor``): a monitor watches one model
version's function over a source of logged predictions and actuals; each refresh stores drift,
performance and count metrics per aggregation window and segment, which the
MODEL_MONITOR_*_METRIC table functions and the REST series endpoint read.
Rollout risk: none. Two new tables; nothing existing changes. Dropping a schema or a model
version drops its monitors and their metrics (ON DELETE CASCADE).

Revision ID: ce9ac0d55fcb
Revises: c3777e1a96bd
Create Date: 2026-11-22 05:02:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ce9ac0d55fcb"
down_revision: str | None = "c3777e1a96bd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_monitors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("function_name", sa.String(length=255), nullable=False),
        sa.Column("warehouse_name", sa.String(length=255), nullable=False),
        sa.Column("model_task", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("baseline", sa.String(length=1024), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("refresh_interval", sa.String(length=64), nullable=False),
        sa.Column("aggregation_window", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_refreshed_on", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["schemas.id"],
            name=op.f("fk_model_monitors_schema_id_schemas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_monitors_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_monitors")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_model_monitors_schema_id_name")),
    )
    op.create_table(
        "model_monitor_metrics",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("metric_name", sa.String(length=64), nullable=False),
        sa.Column("column_name", sa.String(length=255), nullable=False),
        sa.Column("segment_column", sa.String(length=255), nullable=False),
        sa.Column("segment_value", sa.String(length=1024), nullable=False),
        sa.Column("event_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_value", sa.Float(), nullable=True),
        sa.Column("count_used", sa.BigInteger(), nullable=False),
        sa.Column("count_unused", sa.BigInteger(), nullable=False),
        sa.Column("baseline_count_used", sa.BigInteger(), nullable=True),
        sa.Column("baseline_count_unused", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["model_monitors.id"],
            name=op.f("fk_model_monitor_metrics_monitor_id_model_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_monitor_metrics")),
    )
    op.create_index(
        "ix_model_monitor_metrics_monitor_id_kind",
        "model_monitor_metrics",
        ["monitor_id", "kind", "metric_name"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_model_monitor_metrics_monitor_id_kind", table_name="model_monitor_metrics")
    op.drop_table("model_monitor_metrics")
    op.drop_table("model_monitors")
