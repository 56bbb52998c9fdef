"""Executors start one runtime per shard attempt. They share the ``Executor`` protocol."""

from worker.executors.base import Executor, LaunchSpec, RuntimeHandle
from worker.executors.process import ProcessExecutor

__all__ = ["Executor", "LaunchSpec", "ProcessExecutor", "RuntimeHandle"]
