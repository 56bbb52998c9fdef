"""ShardRunner's claim: passing failures are retried, then left to the reaper; a lost race ends it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from runbatch.errors import ConflictError, RunbatchError, ServiceUnavailableError, TransportError
from worker import shard_runner
from worker.settings import WorkerSettings
from worker.shard_runner import ShardRunner


class ScriptedClient:
    """A client seam: each claim raises the next scripted error (the real claim runs in tests/e2e)."""

    def __init__(self, errors: list[RunbatchError]) -> None:
        self.errors = errors
        self.claims = 0

    def claim_shard(self, shard_id: uuid.UUID, worker: str) -> Any:
        self.claims += 1
        raise self.errors.pop(0)


def _runner(client: ScriptedClient) -> ShardRunner:
    return ShardRunner(client, executor=None, settings=WorkerSettings(slots=1), name="w", env={})  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_runner, "_CLAIM_RETRY_DELAYS_S", (0.01, 0.01))


def test_a_passing_claim_failure_is_retried_until_the_answer_is_final() -> None:
    client = ScriptedClient(
        [ServiceUnavailableError("locked"), TransportError("reset"), ConflictError("DONE")]
    )
    _runner(client).run(uuid.uuid4())
    assert (client.claims, client.errors) == (3, [])


def test_a_claim_that_keeps_failing_is_left_for_the_reaper() -> None:
    client = ScriptedClient([ServiceUnavailableError("locked") for _ in range(5)])
    _runner(client).run(uuid.uuid4())
    assert client.claims == 3  # the first try and two retries; the shard stays PENDING


def test_a_stopping_runner_claims_nothing() -> None:
    client = ScriptedClient([])
    runner = _runner(client)
    runner.stop()
    runner.run(uuid.uuid4())
    assert client.claims == 0
