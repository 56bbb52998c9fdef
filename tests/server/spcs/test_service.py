"""Service state transitions on a real (SQLite) metadata database; containers run in tests/e2e/test_services.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from runbatch.errors import (
    ConflictError,
    InvalidArgumentError,
    PermissionDeniedError,
    ServiceUnavailableError,
    UnsupportedError,
)
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import JobRow, ServiceRow, utcnow
from server.resources.service import create_database
from server.spcs import service as spcs

POOL = "SYSTEM_COMPUTE_POOL_CPU"
USER = Principal(name="alice", role="ADMIN")
JOB_SPEC = "spec:\n  containers:\n  - {name: main, image: img:1}\n"
WEB_SPEC = """
spec:
  containers:
  - {name: web, image: img:1, readinessProbe: {port: 8080, path: /ready}}
  endpoints:
  - {name: api, port: 8080, public: true}
  - {name: internal, port: 8080}
"""


class ContainerDispatcher:
    """A dispatcher seam that can run containers and records the services sent."""

    def __init__(self) -> None:
        self.services: list[tuple[str, uuid.UUID]] = []

    def dispatch(self, pool: str, shard_ids: list[uuid.UUID]) -> None:
        return None

    def pending_messages(self, pool: str) -> int | None:
        return None

    def dispatch_service(self, pool: str, service_id: uuid.UUID) -> None:
        self.services.append((pool, service_id))

    def container_engine_problem(self) -> str | None:
        return None


@pytest.fixture
def session(cp: ControlPlane) -> Iterator[Session]:
    with cp.sessionmaker() as session:
        create_database(session, "D", owner="alice")
        yield session


def test_without_a_container_engine_a_job_service_is_refused_before_it_is_recorded(
    cp: ControlPlane, session: Session
) -> None:
    with pytest.raises(
        InvalidArgumentError, match="job services need a Docker engine: run the control plane"
    ):
        spcs.record_job_service(
            session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
        )
    assert session.query(ServiceRow).count() == 0


def test_a_job_service_mirrors_its_status_to_its_job(cp: ControlPlane, session: Session) -> None:
    cp.dispatcher = ContainerDispatcher()
    row = spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
    )
    job = session.get(JobRow, row.job_id)
    assert job is not None and (job.status, job.phase, job.spec["request"]["kind"]) == (
        "PENDING",
        "FINISHED",
        "job_service",
    )
    claimed = spcs.claim(session, row.id, "w1")
    assert (claimed.status, claimed.attempt) == ("RUNNING", 1)
    with pytest.raises(ConflictError, match="is RUNNING; nothing to start"):
        spcs.claim(session, row.id, "w2")  # a redelivered message starts nothing
    spcs.finish(session, row.id, 1, "FAILED", 3, "Container main exited with code 3.", {})
    session.refresh(job)
    assert (job.status, job.message) == ("FAILED", "Container main exited with code 3.")
    (status,) = json.loads(spcs.status_entries(row))
    assert (status["status"], status["message"]) == ("FAILED", "Container main exited with code 3.")

    spcs.drop_service(session, row)
    session.refresh(job)
    assert job.status == "DELETED" and session.query(ServiceRow).count() == 0


def test_a_service_is_ready_suspended_and_resumed(cp: ControlPlane, session: Session) -> None:
    cp.dispatcher = ContainerDispatcher()
    row = spcs.record_service(
        session,
        cp,
        USER,
        database="D",
        schema="PUBLIC",
        name="WEB",
        pool=POOL,
        spec_text=WEB_SPEC,
        min_instances=1,
        max_instances=1,
    )
    spcs.claim(session, row.id, "w1")
    with pytest.raises(ServiceUnavailableError, match="is RUNNING, not READY"):
        spcs.endpoint_address(row, "api")
    assert not spcs.beat(session, row.id, 1, ready=True, endpoints={"api": "127.0.0.1:4000"}, containers={})
    assert row.status == "READY" and spcs.endpoint_address(row, "api") == "127.0.0.1:4000"
    with pytest.raises(PermissionDeniedError, match="'internal' of service WEB is not public"):
        spcs.endpoint_address(row, "internal")
    # A probe that stops answering takes READY away.
    spcs.beat(session, row.id, 1, ready=False, endpoints={"api": "127.0.0.1:4000"}, containers={})
    assert row.status == "RUNNING"

    spcs.suspend(session, row)
    assert row.status == "SUSPENDING"
    assert spcs.beat(session, row.id, 1, ready=True, endpoints={}, containers={})  # the worker hears: stop
    spcs.finish(session, row.id, 1, "DONE", None, "", {})
    assert row.status == "SUSPENDED"
    assert spcs.resume(session, row) and row.status == "PENDING"


def test_several_instances_are_refused(cp: ControlPlane, session: Session) -> None:
    cp.dispatcher = ContainerDispatcher()
    with pytest.raises(UnsupportedError, match="runbatch runs one instance of a service"):
        spcs.record_service(
            session,
            cp,
            USER,
            database="D",
            schema="PUBLIC",
            name="WEB",
            pool=POOL,
            spec_text=WEB_SPEC,
            min_instances=1,
            max_instances=3,
        )


def test_services_of_a_silent_worker_start_again_and_its_job_services_fail(
    cp: ControlPlane, session: Session
) -> None:
    cp.dispatcher = ContainerDispatcher()
    web = spcs.record_service(
        session,
        cp,
        USER,
        database="D",
        schema="PUBLIC",
        name="WEB",
        pool=POOL,
        spec_text=WEB_SPEC,
        min_instances=1,
        max_instances=1,
    )
    job = spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
    )
    for row in (web, job):
        spcs.claim(session, row.id, "w1")
    assert spcs.reconcile(session, 30) == []  # both beat just now
    for row in (web, job):
        row.heartbeat_at = utcnow() - timedelta(seconds=60)

    assert spcs.reconcile(session, 30) == [(POOL, web.id)]

    assert (web.status, web.message) == (
        "PENDING",
        "The worker running it (w1) stopped answering. It is being started again.",
    )
    assert (job.status, job.message) == ("FAILED", "The worker running it (w1) stopped answering.")
    assert spcs.beat(session, web.id, 1, ready=True, endpoints={}, containers={})  # the old worker: stop
    assert spcs.claim(session, web.id, "w2").attempt == 2
