"""The shard protocol on a real metadata database: what a runtime's token may report."""

from __future__ import annotations

import uuid

import pytest

from runbatch.errors import AuthenticationError, InvalidArgumentError
from runbatch.wire.jobs import OutputFile
from server.auth.tokens import authenticate
from server.control_plane import ControlPlane
from server.jobs import shards
from tests.server.conftest import OUTPUT_KEY, add_job

OUT = OUTPUT_KEY


def _pending_shard(cp: ControlPlane) -> uuid.UUID:
    with cp.sessionmaker() as session:
        job = add_job(session, rows_total=10)
        session.commit()
        return job.shards[0].id


def _file(key: str) -> OutputFile:
    return OutputFile(key=key, rows=10, bytes=100)


@pytest.mark.parametrize(
    "key",
    [
        "stages/D/PUBLIC/PRIVATE/secret.txt",
        "registry/D/PUBLIC/M/abc/model/model.pkl",
        f"{OUT}/_temporary/shards/00000/2/part.parquet",  # another attempt's folder
        f"{OUT}/_temporary/shards/00000/1/../../00001/1/part.parquet",
        f"{OUT}/_temporary/shards/00000/1//part.parquet",
    ],
)
def test_a_runtime_can_only_report_files_of_its_own_attempt(cp: ControlPlane, key: str) -> None:
    shard_id = _pending_shard(cp)
    with cp.sessionmaker() as session:
        shards.claim(session, shard_id, "w1")
        session.commit()
    with cp.sessionmaker() as session, pytest.raises(InvalidArgumentError) as exc:
        shards.complete(session, shard_id, 1, [_file(key)], 10, 0)
    assert str(exc.value) == (
        f"Output file {key!r} is outside shard 0's output folder '{OUT}/_temporary/shards/00000/1/'."
    )


def test_the_token_outlives_the_report_until_the_worker_reports_the_exit(cp: ControlPlane) -> None:
    shard_id = _pending_shard(cp)
    with cp.sessionmaker() as session:
        _, secret = shards.claim(session, shard_id, "w1")
        session.commit()
    own = _file(f"{OUT}/_temporary/shards/00000/1/part-00000.parquet")
    for _ in range(2):  # the second call is a retry after a lost response: same answer, no 401
        with cp.sessionmaker() as session:
            assert authenticate(session, secret).shard_id == shard_id
            shard = shards.complete(session, shard_id, 1, [own], 10, 0)
            session.commit()
            assert (shard.state, shard.output_files) == ("DONE", [own.model_dump()])
    with cp.sessionmaker() as session:
        shards.exit_reported(session, shard_id, 1, "", retryable=True)
        session.commit()
    with cp.sessionmaker() as session, pytest.raises(AuthenticationError):
        authenticate(session, secret)
