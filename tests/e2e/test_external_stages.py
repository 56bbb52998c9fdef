"""External S3 stages with their own credentials, mixed with internal stages in one job."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from minio import Minio

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler
from tests.services import MotoServer, ServerProcess

POOL = "SYSTEM_COMPUTE_POOL_CPU"


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    """A bucket of the test's own holding two Parquet files under data/ (and a non-data file)."""
    name = moto_server.make_bucket()
    client = Minio(
        f"127.0.0.1:{moto_server.port}",
        access_key=moto_server.access_key,
        secret_key=moto_server.secret_key,
        secure=False,
    )
    for i in range(2):
        buffer = io.BytesIO()
        pd.DataFrame({"X": [float(10 * i + j) for j in range(5)]}).to_parquet(buffer)
        client.put_object(
            name, f"data/part{i}.parquet", io.BytesIO(buffer.getvalue()), len(buffer.getvalue())
        )
    client.put_object(name, "data/_README", io.BytesIO(b"not data"), 8)
    return name


def _logs_of(request: pytest.FixtureRequest) -> list[Path]:
    """The log files of the processes behind this test's session (none for the embedded one)."""
    kind = request.node.callspec.params["session"]
    if kind == "http":
        return [request.getfixturevalue("server_process").log_path]
    if kind == "cluster":
        cluster = request.getfixturevalue("cluster")
        return [cluster.server.log_path, *(w.log_path for w in cluster.workers)]
    return []


def test_an_external_stage_feeds_a_job_that_writes_to_an_internal_one(
    session: Session, fresh_db: str, bucket: str, moto_server: MotoServer, request: pytest.FixtureRequest
) -> None:
    secret = f"ext-secret-{uuid.uuid4().hex}"  # moto accepts any key; this one must never come back
    session.sql(
        f"CREATE STAGE EXT URL = 's3://{bucket}/data/' ENDPOINT = '{moto_server.endpoint}' "
        f"CREDENTIALS = (AWS_KEY_ID = 'ext-key' AWS_SECRET_KEY = '{secret}')"
    ).collect()
    listed = [r["name"] for r in session.sql("LIST @EXT").collect()]
    assert listed == [
        f"s3://{bucket}/data/_README",
        f"s3://{bucket}/data/part0.parquet",
        f"s3://{bucket}/data/part1.parquet",
    ]
    stages = {r["name"]: r for r in session.sql("SHOW STAGES").collect()}
    ext = stages["EXT"]
    assert (ext["type"], ext["url"], ext["has_credentials"]) == ("EXTERNAL", f"s3://{bucket}/data", "true")
    assert stages["DATA"]["type"] == "INTERNAL"

    mv = Registry(session).log_model(Doubler(), model_name="D", sample_input_data=pd.DataFrame({"X": [1.0]}))
    frame = session.read.parquet("@EXT/")
    assert frame.count() == 10
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/from_ext/"),
        job_spec=JobSpec(replicas=2),
    )
    assert job.wait(60) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/from_ext/").to_pandas().sort_values("X")
    assert out.X.tolist() == [float(v) for v in [*range(5), *range(10, 15)]]
    assert out.Y.tolist() == [2 * v for v in out.X.tolist()]

    with pytest.raises(
        ValueError, match="on an external stage; run_batch writes its results to internal stages"
    ):
        mv.run_batch(frame, compute_pool=POOL, output_spec=OutputSpec(stage_location="@EXT/out/"))
    with pytest.raises(NotImplementedError, match="PUT does not upload to external stages"):
        session.file.put(__file__, "@EXT/")

    # The secret is nowhere: not in SHOW/DESCRIBE output, the job, its logs, or any process's log.
    seen = json.dumps(
        [
            [dict(r.as_dict()) for r in session.sql("SHOW STAGES").collect()],
            job.info.model_dump(mode="json"),
            job.get_logs(),
        ],
        default=str,
    )
    assert secret not in seen
    for log in _logs_of(request):
        assert secret not in log.read_text()


def test_stage_credentials_are_stored_encrypted_and_never_returned(server_process: ServerProcess) -> None:
    base = f"{server_process.url}/api/v1"
    auth = server_process.auth
    secret = f"rest-secret-{uuid.uuid4().hex}"
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE DATABASE IF NOT EXISTS CREDS"})
    created = httpx.post(
        f"{base}/databases/CREDS/schemas/PUBLIC/stages",
        headers=auth,
        json={
            "name": "EXT",
            "url": "s3://some-bucket/path",
            "endpoint": "http://127.0.0.1:9",
            "credentials": {"aws_key_id": "k", "aws_secret_key": secret, "aws_token": f"token-{secret}"},
        },
    )
    assert created.status_code == 201, created.text
    fetched = httpx.get(f"{base}/databases/CREDS/schemas/PUBLIC/stages/EXT", headers=auth)
    body = fetched.json()
    assert (body["type"], body["url"], body["has_credentials"]) == ("EXTERNAL", "s3://some-bucket/path", True)
    for response in (created, fetched):
        assert secret not in response.text
    database = (server_process.home / "runbatch.db").read_bytes()
    assert secret.encode() not in database  # encrypted at rest
    assert secret not in server_process.log_path.read_text()
