"""Model services on a real (SQLite) metadata database; the server runs in tests/docker/test_model_services.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, NotFoundError, ServiceUnavailableError, UnsupportedError
from runbatch.wire.model_services import ModelServiceCreate
from runbatch.wire.services import RuntimeImage, VolumeWork
from server.auth.tokens import ROLE_USER, Principal
from server.control_plane import ControlPlane
from server.db.tables import GrantRow, ModelRow, ModelVersionRow, RoleRow
from server.resources.service import create_database, get_schema
from server.spcs import model_service
from server.spcs import service as spcs
from tests.server.spcs.test_service import POOL, USER, ContainerDispatcher

SIGNATURE = {"inputs": [{"name": "X", "type": "DOUBLE"}], "outputs": [{"name": "Y", "type": "DOUBLE"}]}


def _version(
    session: Session, signatures: dict[str, Any], options: dict[str, Any] | None = None
) -> ModelVersionRow:
    model = ModelRow(schema_id=get_schema(session, "D", "PUBLIC").id, name="M", owner="alice")
    session.add(model)
    session.flush()
    version = ModelVersionRow(
        model_id=model.id,
        name="V1",
        owner="alice",
        artifact_key="registry/D/PUBLIC/M/abc",
        model_type="sklearn",
        spec={
            "signatures": signatures,
            "env": {"pip_requirements": ["scikit-learn==1.9.1"], "python_version": "3.11"},
            **(options or {}),
        },
    )
    session.add(version)
    session.flush()
    return version


@pytest.fixture
def session(cp: ControlPlane) -> Iterator[Session]:
    cp.dispatcher = ContainerDispatcher()
    with cp.sessionmaker() as session:
        create_database(session, "D", owner="alice")
        yield session


def _body(**fields: Any) -> ModelServiceCreate:
    return ModelServiceCreate(database="D", schema_="PUBLIC", name="SVC", compute_pool=POOL, **fields)


def test_the_service_runs_the_inference_server_on_the_model_in_the_runtime_image(
    cp: ControlPlane, session: Session
) -> None:
    version = _version(session, {"predict_proba": SIGNATURE, "predict": SIGNATURE})

    row = model_service.create_model_service(
        session,
        cp,
        USER,
        version,
        _body(
            ingress_enabled=True, cpu_requests="2", memory_requests="4Gi", num_workers=3, max_batch_rows=64
        ),
    )

    assert (row.kind, row.status, row.min_instances, row.max_instances) == ("SERVICE", "PENDING", 1, 1)
    assert yaml.safe_load(row.spec_text) == {
        "spec": {
            "containers": [
                {
                    "name": "model-inference",
                    "image": "runbatch-runtime:cpu",
                    "command": ["python", "-m", "runbatch.runtime.inference_server"],
                    "env": {
                        "RUNBATCH_MODEL_DIR": "/runbatch/model",
                        "RUNBATCH_NUM_WORKERS": "3",
                        "PYTHONDONTWRITEBYTECODE": "1",
                        "RUNBATCH_MAX_BATCH_ROWS": "64",
                    },
                    "readinessProbe": {"port": 5000, "path": "/health"},
                    "volumeMounts": [{"name": "model", "mountPath": "/runbatch/model"}],
                    "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
                }
            ],
            "endpoints": [{"name": "inference", "port": 5000, "public": True}],
            "volumes": [{"name": "model", "source": "local"}],
        }
    }
    spcs.claim(session, row.id, "w1")
    work = spcs.build_work(session, cp, row)
    assert work.volumes == [
        VolumeWork(name="model", storage=cp.storage.config, prefix="registry/D/PUBLIC/M/abc", read_only=True)
    ]
    assert work.containers[0].runtime == RuntimeImage(
        kind="cpu", pip_requirements=["scikit-learn==1.9.1"], python_version="3.11"
    )
    assert work.ports == {"inference": 5000}

    (listed,) = model_service.list_model_services(session, version)
    public = model_service.public(listed, "http://cp", "/api/v1/services/D/PUBLIC/SVC/endpoints/inference/")
    assert (public.name, public.status, public.inference_endpoint, public.internal_endpoint) == (
        "D.PUBLIC.SVC",
        "RUNNING",
        "http://cp/api/v1/services/D/PUBLIC/SVC/endpoints/inference/",
        None,
    )
    assert public.functions == {"PREDICT_PROBA": "/predict-proba", "PREDICT": "/predict"}
    with pytest.raises(ServiceUnavailableError, match=r"D\.PUBLIC\.SVC is RUNNING, not READY\. Wait until"):
        model_service.inference_address(session, USER, "D", "PUBLIC", "SVC", "predict")
    spcs.beat(
        session, row.id, row.attempt, ready=True, endpoints={"inference": "127.0.0.1:4242"}, containers={}
    )
    assert model_service.inference_address(session, USER, "D", "PUBLIC", "SVC", "predict_proba")[1:] == (
        "127.0.0.1:4242",
        "/predict-proba",
    )


def test_dropping_is_for_the_version_s_own_services(cp: ControlPlane, session: Session) -> None:
    version = _version(session, {"predict": SIGNATURE})
    model_service.create_model_service(session, cp, USER, version, _body())
    spcs.record_service(
        session,
        cp,
        USER,
        database="D",
        schema="PUBLIC",
        name="OTHER",
        pool=POOL,
        spec_text="spec:\n  containers:\n  - {name: main, image: img:1}\n",
        min_instances=1,
        max_instances=1,
    )
    message = "does not exist or unauthorized or not associated with this model version"
    with pytest.raises(NotFoundError, match=rf"Service 'D\.PUBLIC\.OTHER' {message}"):
        model_service.delete_model_service(session, version, "D", "PUBLIC", "OTHER")
    with pytest.raises(InvalidArgumentError, match=r"D\.PUBLIC\.OTHER is not a model service"):
        model_service.inference_address(session, USER, "D", "PUBLIC", "OTHER", "predict")

    model_service.delete_model_service(session, version, "D", "PUBLIC", "SVC")

    assert model_service.list_model_services(session, version) == []
    with pytest.raises(NotFoundError, match=message):
        model_service.delete_model_service(session, version, "D", "PUBLIC", "SVC")


def test_refusals(cp: ControlPlane, session: Session) -> None:
    table = _version(session, {"explode": SIGNATURE}, {"options": {"function_type": "TABLE_FUNCTION"}})
    with pytest.raises(
        InvalidArgumentError, match="Online inference services do not support TABLE_FUNCTION methods"
    ):
        model_service.create_model_service(session, cp, USER, table, _body())
    session.rollback()
    create_database(session, "D", owner="alice")
    version = _version(session, {"predict": SIGNATURE})
    with pytest.raises(InvalidArgumentError, match="The vLLM engine runs on GPUs: set gpu_requests"):
        model_service.create_model_service(
            session, cp, USER, version, _body(inference_engine_options={"engine": "vllm"})
        )
    with pytest.raises(InvalidArgumentError, match=r"unknown key\(s\) \['args'\]"):
        model_service.create_model_service(
            session, cp, USER, version, _body(inference_engine_options={"args": []})
        )
    with pytest.raises(UnsupportedError) as refused:
        model_service.create_model_service(session, cp, USER, version, _body(max_instances=2))
    assert str(refused.value) == (
        "max_instances=2: runbatch runs one instance of a service. Pass max_instances=1 (the default), or "
        "create several services."
    )
    with pytest.raises(InvalidArgumentError) as invalid:
        model_service.create_model_service(session, cp, USER, version, _body(min_instances=2))
    assert str(invalid.value) == (
        "min_instances=2 is more than max_instances=1: runbatch runs one instance of a service. Pass "
        "min_instances=0 or 1."
    )


def test_a_call_reaches_only_the_service_s_functions_with_usage_on_its_model(
    cp: ControlPlane, session: Session
) -> None:
    version = _version(session, {"predict": SIGNATURE})
    row = model_service.create_model_service(session, cp, USER, version, _body())
    spcs.claim(session, row.id, "w1")
    spcs.beat(
        session, row.id, row.attempt, ready=True, endpoints={"inference": "127.0.0.1:4242"}, containers={}
    )
    with pytest.raises(NotFoundError) as refused:
        model_service.inference_address(session, USER, "D", "PUBLIC", "SVC", "health")
    assert str(refused.value) == (
        "Service D.PUBLIC.SVC has no function 'health'; its functions are: PREDICT. Call one of them "
        "(mv.run(..., function_name=...))."
    )
    with pytest.raises(NotFoundError, match="has no function ''"):
        model_service.inference_address(session, USER, "D", "PUBLIC", "SVC", "")

    analyst = RoleRow(name="ANALYST")
    session.add(analyst)
    session.flush()
    bob = Principal(name="bob", role=ROLE_USER, roles=frozenset({"ANALYST", "PUBLIC"}))
    hidden = "Service D.PUBLIC.SVC does not exist or not authorized."
    for service in ("SVC", "NOPE"):
        with pytest.raises(NotFoundError) as refused:
            model_service.inference_address(session, bob, "D", "PUBLIC", service, "predict")
        assert str(refused.value) == hidden.replace("SVC", service)
    session.add(
        GrantRow(
            role_id=analyst.id,
            privilege="USAGE",
            object_type="MODEL",
            model_id=version.model_id,
            granted_by="ACCOUNTADMIN",
        )
    )
    session.flush()
    assert model_service.inference_address(session, bob, "D", "PUBLIC", "SVC", "PREDICT")[1:] == (
        "127.0.0.1:4242",
        "/predict",
    )
