"""A long-running service's container loop (worker/services.py) against a scripted executor."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runbatch.wire.services import ContainerWork, ServiceWork
from worker.executors.base import LaunchRefused
from worker.services import _Service


class _Handle:
    def __init__(self, service: _Service, last: bool) -> None:
        self.service, self.last = service, last

    def lines(self) -> list[str]:
        return []

    def wait(self) -> int:
        if self.last:
            self.service.stop.set()
            return 0
        return 1

    def exit_message(self, code: int) -> None:
        return None

    def kill(self) -> None:
        pass


class _Executor:
    """Refuses the first launch (a pull that failed), then starts the container twice (it exits once)."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []
        self.service: _Service | None = None

    def run_container(self, *, registry_token: str | None, **_: Any) -> _Handle:
        self.tokens.append(registry_token)
        if len(self.tokens) == 1:
            raise LaunchRefused("pulling 127.0.0.1:5000/ml/public/images/web:1 failed: connection refused")
        assert self.service is not None
        return _Handle(self.service, last=len(self.tokens) == 3)


def test_a_failed_pull_is_tried_again_with_the_token_and_a_restart_pulls_no_more(tmp_path: Path) -> None:
    container = ContainerWork(
        name="main", image="127.0.0.1:5000/ml/public/images/web:1", registry_token=SecretStr("pull-token")
    )
    work = ServiceWork(
        service_id=uuid.uuid4(), job_id=uuid.uuid4(), name="ML.PUBLIC.WEB", attempt=1, containers=[container]
    )
    executor = _Executor()
    service = _Service(client=None, executor=executor, work=work, volume_root=tmp_path, host="127.0.0.1")  # type: ignore[arg-type]
    executor.service = service
    thread = threading.Thread(target=service._keep, args=(container, {}))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    # Once a container started, the image is on the engine (and the token may have expired).
    assert executor.tokens == ["pull-token", "pull-token", None]
    assert service.states["main"] == {"status": "DONE", "message": "Stopped", "exit_code": 0, "restarts": 2}
