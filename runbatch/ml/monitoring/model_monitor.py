"""Mirror of ``snowflake.ml.monitoring.model_monitor``: a handle on one model monitor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbatch.wire.monitors import MetricKind, MetricSeries, MonitorRefresh

if TYPE_CHECKING:
    from runbatch.client import ControlPlaneClient

__all__ = ["ModelMonitor"]


class ModelMonitor:
    """Class to manage instrumentation of Model Monitoring and Observability."""

    name: str
    _client: ControlPlaneClient
    _database: str
    _schema: str

    def __init__(self) -> None:
        raise RuntimeError("Model Monitor's initializer is not meant to be used.")

    @classmethod
    def _ref(cls, client: ControlPlaneClient, database: str, schema: str, name: str) -> ModelMonitor:
        self: ModelMonitor = object.__new__(cls)
        self.name = name
        self._client = client
        self._database = database
        self._schema = schema
        return self

    def __repr__(self) -> str:
        return f"ModelMonitor(name='{self.name}')"

    def suspend(self) -> None:
        """Suspend the Model Monitor: no more refreshes until ``resume``."""
        self._client.suspend_monitor(self._database, self._schema, self.name)

    def resume(self) -> None:
        """Resume the Model Monitor."""
        self._client.resume_monitor(self._database, self._schema, self.name)

    def refresh(self) -> MonitorRefresh:
        """Recompute the metrics now (a runbatch extension; Snowflake refreshes only on its schedule)."""
        return self._client.refresh_monitor(self._database, self._schema, self.name)

    def metric_series(
        self,
        kind: MetricKind,
        metric_name: str,
        column_name: str | None = None,
        *,
        segment: tuple[str, str] | None = None,
    ) -> MetricSeries:
        """One stored metric over time, oldest window first (a runbatch extension)."""
        return self._client.monitor_metrics(
            self._database,
            self._schema,
            self.name,
            kind=kind,
            metric=metric_name,
            column=column_name,
            segment_column=segment[0] if segment else None,
            segment_value=segment[1] if segment else None,
        )
