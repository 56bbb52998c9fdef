"""Add task graphs: DAGs, their tasks, their runs and each task's run (scheduled batch inference).

Why: runbatch.core.task.dagv1 (DAG, DAGTask, DAGOperation) and BatchInferenceTask (issue 9).
dag_runs has a unique (dag_id, slot_at) so a schedule slot fires once with any number of
control plane replicas.
Rollout risk: none. New tables only; nothing existing changes.

Revision ID: ffef05a5fd6a
Revises: 5eeb49baa16a
Create Date: 2026-11-22 01:25:56.427203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ffef05a5fd6a"
down_revision: str | None = "5eeb49baa16a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("schedule_anchor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("graph_version", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=255), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("allow_overlapping_execution", sa.Boolean(), nullable=False),
        sa.Column("user_task_timeout_ms", sa.BigInteger(), nullable=True),
        sa.Column("suspend_task_after_num_failures", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("session_parameters", sa.JSON(), nullable=True),
        sa.Column("use_func_return_value", sa.Boolean(), nullable=False),
        sa.Column("last_suspended_reason", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_dags_schema_id_schemas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dags")),
        sa.UniqueConstraint("schema_id", "name", name=op.f("uq_dags_schema_id_name")),
    )
    op.create_index("ix_dags_next_slot_at", "dags", ["next_slot_at"], unique=False)

    op.create_table(
        "dag_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dag_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("missed_slots", sa.Integer(), nullable=False),
        sa.Column("graph_version", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_error_task_name", sa.String(length=511), nullable=True),
        sa.Column("first_error_code", sa.Integer(), nullable=True),
        sa.Column("first_error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dags.id"], name=op.f("fk_dag_runs_dag_id_dags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag_runs")),
        sa.UniqueConstraint("dag_id", "slot_at", name=op.f("uq_dag_runs_dag_id_slot_at")),
    )
    op.create_index("ix_dag_runs_dag_id_scheduled_at", "dag_runs", ["dag_id", "scheduled_at"], unique=False)
    op.create_index("ix_dag_runs_state", "dag_runs", ["state"], unique=False)

    op.create_table(
        "dag_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sql", sa.Text(), nullable=True),
        sa.Column("python", sa.LargeBinary(), nullable=True),
        sa.Column("predecessors", sa.JSON(), nullable=False),
        sa.Column("is_finalizer", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("warehouse", sa.String(length=255), nullable=True),
        sa.Column("user_task_timeout_ms", sa.BigInteger(), nullable=True),
        sa.Column("session_parameters", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dags.id"], name=op.f("fk_dag_tasks_dag_id_dags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag_tasks")),
        sa.UniqueConstraint("dag_id", "name", name=op.f("uq_dag_tasks_dag_id_name")),
    )
    op.create_table(
        "dag_task_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("return_value", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_ids", sa.JSON(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["dag_runs.id"], name=op.f("fk_dag_task_runs_run_id_dag_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag_task_runs")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_dag_task_runs_run_id_name")),
    )


def downgrade() -> None:
    op.drop_table("dag_task_runs")
    op.drop_table("dag_tasks")
    op.drop_index("ix_dag_runs_state", table_name="dag_runs")
    op.drop_index("ix_dag_runs_dag_id_scheduled_at", table_name="dag_runs")
    op.drop_table("dag_runs")
    op.drop_index("ix_dags_next_slot_at", table_name="dags")
    op.drop_table("dags")
