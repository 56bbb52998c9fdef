"""Model services: an sklearn model served online from the runtime image, on a Docker worker.

One service container for the whole module; it shares the session's Docker cluster and runtime
image with the batch job tests (tests/docker/conftest.py).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from runbatch.errors import NotFoundError, ServiceUnavailableError
from runbatch.ml.model._service import ServiceDeployment
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from tests.services import Cluster

pytestmark = pytest.mark.timeout(900)

POOL = "SYSTEM_COMPUTE_POOL_CPU"


def _pandas(result: Any) -> pd.DataFrame:
    if not isinstance(result, pd.DataFrame):
        result = result.to_pandas()
    assert isinstance(result, pd.DataFrame)
    return result


def _service_status(session: Any, name: str) -> str:
    rows = session.sql(f"SHOW SERVICES LIKE '{name}'").collect()
    return str(rows[0]["status"]) if rows else "GONE"


def test_a_model_service_answers_as_the_model_does(docker_cluster: Cluster, docker_client: Any) -> None:
    server = docker_cluster.server
    assert server is not None
    session = docker_cluster.session()
    db = f"MS_{int(time.time() * 1000) % 10**9}"
    session.sql(f"CREATE DATABASE {db}").collect()
    session.sql("CREATE STAGE DATA").collect()
    rng = np.random.default_rng(7)
    data = pd.DataFrame(rng.normal(size=(2_000, 3)), columns=["A", "B", "C"])
    model = LogisticRegression().fit(data, data.A + data.B > 0)
    mv = Registry(session).log_model(model, model_name="CLF", sample_input_data=data.head(10))

    deployment = mv.create_service(
        service_name="CLF_SVC",
        service_compute_pool=POOL,
        ingress_enabled=True,
        max_batch_rows=300,
        block=False,
    )
    assert isinstance(deployment, ServiceDeployment)
    with pytest.raises(
        ServiceUnavailableError, match=r"CLF_SVC is (PENDING|RUNNING), not READY\. .*Wait until"
    ):
        mv.run(data.head(3), service_name="CLF_SVC", function_name="predict")
    assert (
        deployment.result(timeout=300) == f"Inference service {db}.PUBLIC.CLF_SVC deployment complete: READY."
    )

    # The same frame, columns, dtypes and values as a local run, for pandas and for a DataFrame.
    local = _pandas(mv.run(data, function_name="predict_proba"))
    served = _pandas(mv.run(data, service_name="CLF_SVC", function_name="predict_proba"))
    pd.testing.assert_frame_equal(served, local, check_exact=True)
    labels = _pandas(mv.run(data, service_name=f"{db}.PUBLIC.CLF_SVC", function_name="predict"))
    pd.testing.assert_frame_equal(labels, _pandas(mv.run(data, function_name="predict")), check_exact=True)
    frame = session.create_dataframe(data.head(50))
    pd.testing.assert_frame_equal(
        _pandas(mv.run(frame, service_name="CLF_SVC", function_name="predict_proba")),
        _pandas(mv.run(frame, function_name="predict_proba")),
        check_exact=True,
    )
    # ... and as the batch job.
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/out/"),
        job_spec=JobSpec(function_name="predict_proba"),
    )
    assert job.wait(300) == "DONE", job.get_logs()
    batch = session.read.option("pattern", ".*\\.parquet").parquet("@DATA/out/").to_pandas()
    merged = data.merge(batch, on=["A", "B", "C"], how="left")
    pd.testing.assert_frame_equal(merged[list(served.columns)], served, check_exact=True, check_dtype=False)

    listed = mv.list_services()
    ingress = f"{server.url}/api/v1/services/{db}/PUBLIC/CLF_SVC/endpoints/inference/"
    assert listed.columns.tolist() == [
        "name",
        "status",
        "inference_endpoint",
        "internal_endpoint",
        "autocapture_enabled",
    ]
    assert listed[["name", "status", "inference_endpoint", "autocapture_enabled"]].values.tolist() == [
        [f"{db}.PUBLIC.CLF_SVC", "READY", ingress, False]
    ]
    assert listed.internal_endpoint[0].startswith("http://127.0.0.1:")
    assert _service_status(session, "CLF_SVC") == "READY"

    # The ingress endpoint speaks Snowflake's protocol, behind the control plane's token check.
    row = data.iloc[0].tolist()
    answer = httpx.post(
        ingress + "predict-proba", json={"data": [[0, *row]]}, headers=server.auth, timeout=30
    )
    expected = model.predict_proba(data.head(1))[0]
    assert answer.status_code == 200
    assert answer.json() == {
        "data": [[0, {"output_feature_0": expected[0], "output_feature_1": expected[1]}]]
    }
    assert httpx.post(ingress + "predict-proba", json={"data": [[0, *row]]}, timeout=30).status_code == 401
    function_url = f"{server.url}/api/v1/services/{db}/PUBLIC/CLF_SVC/functions/predict_proba"
    assert httpx.post(function_url, json={"data": [[0, *row]]}, timeout=30).status_code == 401
    refused = httpx.post(function_url, json={"data": [[0, 1.0]]}, headers=server.auth, timeout=30)
    assert refused.status_code == 400
    assert (
        "Row 0 has 1 argument(s) after its index; the function takes 3" in refused.json()["error"]["message"]
    )

    with pytest.raises(NotFoundError, match=r"Service .*\.PUBLIC\.NO_SUCH does not exist"):
        mv.run(data.head(3), service_name="NO_SUCH", function_name="predict")

    mv.delete_service("CLF_SVC")
    assert mv.list_services().empty
    with pytest.raises(
        ValueError, match="does not exist or unauthorized or not associated with this model version"
    ):
        mv.delete_service("CLF_SVC")
    deadline = time.monotonic() + 60
    while docker_client.containers.list(filters={"name": f"runbatch-svc-{db.lower()}.public.clf_svc"}):
        assert time.monotonic() < deadline
        time.sleep(0.5)
