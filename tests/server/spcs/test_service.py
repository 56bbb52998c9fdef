"""Service state transitions on a real (SQLite) metadata database; containers run in tests/e2e/test_services.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from runbatch.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    UnsupportedError,
)
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import JobRow, ServiceRow, utcnow
from server.jobs import service as jobs
from server.resources.service import create_database
from server.spcs import service as spcs
from server.sql.executor import execute_sql

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


def _running_job_service(cp: ControlPlane, session: Session, name: str = "J") -> tuple[ServiceRow, JobRow]:
    cp.dispatcher = ContainerDispatcher()
    row = spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name=name, pool=POOL, spec_text=JOB_SPEC
    )
    spcs.claim(session, row.id, "w1")
    spcs.append_logs(session, row.id, 1, "main", ["sleeping"])
    job = session.get(JobRow, row.job_id)
    assert job is not None
    return row, job


def test_cancelling_a_running_job_service_stops_it_and_keeps_it_with_its_logs(
    cp: ControlPlane, session: Session
) -> None:
    row, job = _running_job_service(cp, session)

    jobs.cancel_job(session, job)  # what POST .../jobs/J/cancel runs

    assert (row.status, job.status) == ("CANCELLING", "CANCELLING")
    assert spcs.beat(session, row.id, 1, ready=False, endpoints={}, containers={})  # the worker hears: stop
    jobs.cancel_job(session, job)  # cancelling again changes nothing
    assert row.status == "CANCELLING"
    killed = {
        "main": {"status": "FAILED", "exit_code": 137, "message": "Container main exited with code 137."}
    }
    assert (
        spcs.finish(session, row.id, 1, "FAILED", 137, "Container main exited with code 137.", killed) is row
    )
    session.refresh(job)
    assert (row.status, row.message, job.status, job.message) == (
        "CANCELLED",
        "Cancelled: its containers were stopped.",
        "CANCELLED",
        "Cancelled: its containers were stopped.",
    )
    assert row.containers == {
        "main": {
            "status": "CANCELLED",
            "exit_code": 137,
            "message": "Cancelled: its containers were stopped.",
        }
    }
    assert spcs.read_logs(session, row, "main", 0) == ["sleeping"]
    assert jobs.get_job(session, "D", "PUBLIC", "J").status == "CANCELLED"
    jobs.cancel_job(session, job)  # a cancelled job stays cancelled
    assert row.status == "CANCELLED" and session.query(ServiceRow).count() == 1


def test_cancelling_a_pending_job_service_ends_it_before_any_worker_starts_it(
    cp: ControlPlane, session: Session
) -> None:
    cp.dispatcher = ContainerDispatcher()
    row = spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
    )
    job = session.get(JobRow, row.job_id)
    assert job is not None

    jobs.cancel_job(session, job)

    assert (row.status, job.status, job.finished_at is not None) == ("CANCELLED", "CANCELLED", True)
    assert row.containers == {
        "main": {"status": "CANCELLED", "message": "Cancelled: its containers were stopped."}
    }
    with pytest.raises(ConflictError, match="Service J is CANCELLED; nothing to start"):
        spcs.claim(session, row.id, "w1")  # the message already sent to a worker starts nothing


def test_deleting_a_running_job_service_stops_it_then_drops_it(cp: ControlPlane, session: Session) -> None:
    row, job = _running_job_service(cp, session)
    service_id = row.id

    assert not jobs.delete_job(session, job)  # what DELETE .../jobs/J runs: it ends later

    with pytest.raises(NotFoundError, match=r"Job D\.PUBLIC\.J does not exist"):
        jobs.get_job(session, "D", "PUBLIC", "J")  # hidden at once, as a dropped service is
    assert (row.status, row.dropping, job.status) == ("CANCELLING", True, "CANCELLING")
    assert spcs.beat(session, service_id, 1, ready=False, endpoints={}, containers={})
    assert (
        spcs.finish(session, service_id, 1, "FAILED", 137, "Container main exited with code 137.", {}) is None
    )
    session.refresh(job)
    assert job.status == "DELETED" and session.get(ServiceRow, service_id) is None
    # The name is free again.
    spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
    )


def test_deleting_a_finished_job_service_drops_it_now(cp: ControlPlane, session: Session) -> None:
    row, job = _running_job_service(cp, session)
    spcs.finish(session, row.id, 1, "DONE", 0, "", {})

    assert jobs.delete_job(session, job)

    assert job.status == "DELETED" and session.query(ServiceRow).count() == 0


def test_dropping_a_job_service_while_it_is_cancelled_drops_it(cp: ControlPlane, session: Session) -> None:
    row, job = _running_job_service(cp, session)
    jobs.cancel_job(session, job)
    assert not spcs.drop_service(session, row)  # DROP SERVICE while the worker stops it: it still goes

    assert spcs.finish(session, row.id, 1, "FAILED", 137, "", {}) is None
    session.refresh(job)
    assert job.status == "DELETED" and session.query(ServiceRow).count() == 0


def test_a_service_is_not_cancelled_as_a_job(cp: ControlPlane, session: Session) -> None:
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
    with pytest.raises(InvalidArgumentError, match="WEB is a service, not a job service: stop it with ALTER"):
        spcs.cancel_job_service(session, row)


def _describe(cp: ControlPlane, session: Session, name: str, user: Principal = USER) -> dict[str, Any]:
    result = execute_sql(
        session, cp.storage, cp.secrets, user, f"DESCRIBE SERVICE {name}", database="D", schema="PUBLIC"
    ).result
    (row,) = result.rows
    return dict(zip(result.columns, row, strict=True))


def test_describe_service_describes_a_service_in_the_columns_of_a_job_service(
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
    job_service = spcs.record_job_service(
        session, cp, USER, database="D", schema="PUBLIC", name="J", pool=POOL, spec_text=JOB_SPEC
    )
    spcs.claim(session, web.id, "w1")
    spcs.beat(session, web.id, 1, ready=True, endpoints={"api": "127.0.0.1:4000"}, containers={})

    described = _describe(cp, session, "WEB")

    job_described = _describe(cp, session, job_service.name)
    assert list(described) == list(job_described)  # one shape for both
    assert (job_described["spec"], job_described["is_job"]) == (JOB_SPEC, True)
    assert web.started_at is not None
    assert described == {
        "name": "WEB",
        "status": "READY",
        "database_name": "D",
        "schema_name": "PUBLIC",
        "owner": "alice",
        "compute_pool": POOL,
        "spec": WEB_SPEC,
        "dns_name": None,
        "current_instances": 1,
        "target_instances": 1,
        "min_ready_instances": 1,
        "min_instances": 1,
        "max_instances": 1,
        "auto_resume": False,
        "external_access_integrations": None,
        "created_on": described["created_on"],
        "updated_on": described["updated_on"],
        "resumed_on": described["resumed_on"],
        "suspended_on": None,
        "auto_suspend_secs": 0,
        "comment": None,
        "owner_role_type": "ROLE",
        "query_warehouse": None,
        "is_job": False,
        "is_async_job": False,
        "spec_digest": hashlib.sha256(WEB_SPEC.encode()).hexdigest(),
        "is_upgrading": False,
        "managing_object_domain": None,
        "managing_object_name": None,
    }
    assert described["resumed_on"] == described["updated_on"]
    spcs.suspend(session, web)
    spcs.finish(session, web.id, 1, "DONE", None, "", {})
    suspended = _describe(cp, session, "D.PUBLIC.WEB")
    assert (suspended["status"], suspended["current_instances"], suspended["target_instances"]) == (
        "SUSPENDED",
        0,
        0,
    )
    assert suspended["suspended_on"] == suspended["updated_on"]
    with pytest.raises(NotFoundError, match=r"Job D\.PUBLIC\.NOPE does not exist or not authorized"):
        _describe(cp, session, "NOPE")
    with pytest.raises(NotFoundError, match=r"Job D\.PUBLIC\.WEB does not exist or not authorized"):
        _describe(cp, session, "WEB", Principal(name="bob", role="USER"))  # not its owner
    assert _describe(cp, session, "WEB", Principal(name="alice", role="USER"))["name"] == "WEB"
