"""Tokens: the admin token file, hashing at rest, and the narrow reach of a runtime's shard token."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from runbatch.ml.model.batch import OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler
from tests.services import ServerProcess

CONFIGURED_TOKEN = "configured-admin-token-0123456789abcdef"


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose worker has no slots (shards stay PENDING for the test to claim), with a
    configured admin token besides its minted one."""
    server = ServerProcess(
        tmp_path_factory.mktemp("idle-server"),
        {"RUNBATCH_SLOTS": "0", "RUNBATCH_ADMIN_TOKEN": CONFIGURED_TOKEN},
    )
    yield server
    server.stop()


def test_a_configured_admin_token_is_accepted_and_checked(idle_server: ServerProcess, tmp_path: Path) -> None:
    url = f"{idle_server.url}/api/v1/databases"
    assert httpx.get(url, headers={"Authorization": f"Bearer {CONFIGURED_TOKEN}"}).status_code == 200
    with pytest.raises(RuntimeError, match="RUNBATCH_ADMIN_TOKEN must be at least 32 characters"):
        ServerProcess(tmp_path, {"RUNBATCH_ADMIN_TOKEN": "short"})


def test_admin_token_file_is_private_and_only_hashed_at_rest(idle_server: ServerProcess) -> None:
    token_file = idle_server.home / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    secret = token_file.read_text().strip()
    assert secret.startswith("rbt_") and len(secret) > 40
    engine = create_engine(f"sqlite:///{idle_server.home / 'runbatch.db'}")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    engine.dispose()
    assert len(stored) == 2 and all(len(digest) == 64 for digest in stored)  # minted and configured
    database = Path(idle_server.home / "runbatch.db").read_bytes()
    for plain in (secret, CONFIGURED_TOKEN):
        assert plain not in stored and plain.encode() not in database


def test_a_shard_token_reaches_only_its_shard(idle_server: ServerProcess) -> None:
    session = Session.builder.configs({"url": idle_server.url, "token": idle_server.token}).create()
    session.sql("CREATE DATABASE SCOPE").collect()
    session.sql("CREATE STAGE S").collect()
    mv = Registry(session).log_model(Doubler(), model_name="D", sample_input_data=pd.DataFrame({"X": [1.0]}))
    rows = session.create_dataframe([(float(i),) for i in range(4)], schema=["X"])
    from runbatch.ml.model.batch import JobSpec

    job = mv.run_batch(
        rows,
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location="@S/o/"),
        job_spec=JobSpec(replicas=2),
    )
    assert job.status == "PENDING"
    admin = {"Authorization": f"Bearer {idle_server.token}"}
    base = f"{idle_server.url}/api/v1"
    shards = httpx.get(f"{base}/databases/SCOPE/schemas/PUBLIC/jobs/{job.name}/shards", headers=admin).json()
    mine, other = shards[0]["id"], shards[1]["id"]
    claim = httpx.post(f"{base}/shards/{mine}/claim", headers=admin, json={"worker": "test"})
    assert claim.status_code == 200
    assert (
        httpx.post(f"{base}/shards/{mine}/claim", headers=admin, json={"worker": "again"}).status_code == 409
    )
    shard = {"Authorization": f"Bearer {claim.json()['token']}"}
    assert httpx.get(f"{base}/shards/{mine}/work", headers=shard).status_code == 200
    assert (
        httpx.get(f"{base}/shards/{other}/work", headers=shard).json()["error"]["code"] == "permission_denied"
    )
    for path in ("/jobs", "/databases", f"/databases/SCOPE/schemas/PUBLIC/jobs/{job.name}/logs"):
        response = httpx.get(base + path, headers=shard)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    job.cancel()
    assert job.wait(30) == "CANCELLED"
    session.close()
