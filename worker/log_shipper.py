"""LogShipper: batches a process's output lines and sends them to the control plane in the background.

Shards and service containers both print far faster than one request per line could carry, and
neither may block on the control plane: lines are kept in memory and sent every ``interval``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from runbatch.errors import RunbatchError

__all__ = ["LogShipper"]

log = logging.getLogger("runbatch.worker")


class LogShipper:
    """Sends the lines given to ``add`` through ``send`` in batches, until ``close`` sends the last."""

    def __init__(self, send: Callable[[list[str]], None], interval: float, what: str) -> None:
        self._send, self._interval, self._what = send, interval, what
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"logs-{what}", daemon=True)
        self._thread.start()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def _flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                self._send(lines)
            except RunbatchError as exc:
                # The runtime goes on: losing some lines beats stalling inference on the control plane.
                log.warning("could not ship %d log lines of %s: %s", len(lines), self._what, exc)

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            self._flush()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self._flush()
