"""The client side of model services against a fake control plane client (no server, no Docker)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from runbatch.ml.model import _service
from runbatch.ml.model._signatures.core import DataType, FeatureSpec, ModelSignature, ParamSpec
from runbatch.wire.model_services import ModelServicePublic

SIGNATURE = ModelSignature(
    inputs=[FeatureSpec("A", DataType.DOUBLE), FeatureSpec("B", DataType.INT64)],
    outputs=[FeatureSpec("Y", DataType.DOUBLE)],
    params=[ParamSpec("scale", DataType.DOUBLE, 2.0)],
)
INFO: Any = {
    "name": "PREDICT",
    "target_method": "predict",
    "target_method_function_type": "FUNCTION",
    "signature": SIGNATURE,
    "is_partitioned": False,
}


class FakeClient:
    def __init__(self, statuses: list[ModelServicePublic] | None = None, reverse: bool = False) -> None:
        self.calls: list[tuple[tuple[str, str, str], str, list[list[Any]]]] = []
        self.statuses = statuses or []
        self.reverse = reverse

    def call_model_service(
        self, service: tuple[str, str, str], function: str, rows: list[list[Any]]
    ) -> list[Any]:
        self.calls.append((service, function, rows))
        answer = [[r[0], {"Y": (r[1] + r[2]) * r[3]}] for r in rows]
        return answer[::-1] if self.reverse else answer

    def list_model_services(self, *key: str) -> list[ModelServicePublic]:
        return [self.statuses.pop(0)] if len(self.statuses) > 1 else self.statuses


def _mv(client: FakeClient, logs: str = "") -> Any:
    session = SimpleNamespace(sql=lambda text: SimpleNamespace(collect=lambda: [[logs]]))
    return SimpleNamespace(
        _conn=SimpleNamespace(client=client),
        _session=session,
        _info=SimpleNamespace(database_name="D", schema_name="PUBLIC"),
        _key=("D", "PUBLIC", "M", "V1"),
    )


def test_rows_go_in_requests_with_their_params_and_come_back_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_service, "REQUEST_ROWS", 2)
    client = FakeClient(reverse=True)
    fn = _service.remote_model(_mv(client), "svc", INFO).function("predict")
    frame = pd.DataFrame({"A": [0.5, 1.5, 2.5], "B": [1, 2, 3]}, index=[10, 11, 12])

    out = fn(frame, {"scale": 2.0})

    assert out.to_dict("list") == {"Y": [3.0, 7.0, 11.0]}
    assert out.index.tolist() == [10, 11, 12]
    assert client.calls == [
        (("D", "PUBLIC", "SVC"), "predict", [[0, 0.5, 1, 2.0], [1, 1.5, 2, 2.0]]),
        (("D", "PUBLIC", "SVC"), "predict", [[0, 2.5, 3, 2.0]]),
    ]


def test_a_malformed_answer_says_what_a_row_must_be() -> None:
    with pytest.raises(RuntimeError, match=r"answered a row as \[0, 1\.0\]; each row must be \[row_index"):
        _service._answer_rows([[0, 1.0]], 1, "D.PUBLIC.SVC")
    with pytest.raises(RuntimeError, match=r"answered 1 row\(s\) for the 2 it was sent"):
        _service._answer_rows([[0, {"Y": 1}]], 2, "D.PUBLIC.SVC")


def test_names_default_to_the_model_s_database_and_schema() -> None:
    mv = _mv(FakeClient())
    assert _service.service_parts(mv, "svc") == ("D", "PUBLIC", "SVC")
    assert _service.service_parts(mv, 'OTHER."my svc"') == ("D", "OTHER", "my svc")
    with pytest.raises(ValueError, match="service_name cannot be empty."):
        _service.service_parts(mv, " ")
    with pytest.raises(ValueError, match="TABLE_FUNCTION"):
        table: Any = {**INFO, "target_method_function_type": "TABLE_FUNCTION"}
        _service.remote_model(mv, "svc", table)


def _status(status: str, restarts: int = 0) -> ModelServicePublic:
    return ModelServicePublic(
        name="D.PUBLIC.SVC",
        database_name="D",
        schema_name="PUBLIC",
        service_name="SVC",
        status=status,
        restarts=restarts,
    )


def test_waiting_ends_ready_or_with_the_server_s_last_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_service, "_POLL_S", 0.0)
    ready = _mv(FakeClient([_status("PENDING"), _status("RUNNING"), _status("READY")]))
    assert _service.ServiceDeployment(ready, ("D", "PUBLIC", "SVC")).result() == (
        "Inference service D.PUBLIC.SVC deployment complete: READY."
    )

    crashed = _mv(
        FakeClient([_status("RUNNING"), _status("RUNNING", restarts=1)]), logs="ModuleNotFoundError: x"
    )
    deployment = _service.ServiceDeployment(crashed, ("D", "PUBLIC", "SVC"))
    with pytest.raises(RuntimeError) as raised:
        deployment.result()
    assert str(raised.value) == (
        "Model service deployment failed: Service D.PUBLIC.SVC failed with status RUNNING: its inference server "
        "exited\nLast lines of its log:\nModuleNotFoundError: x"
    )
    assert deployment.is_done()
