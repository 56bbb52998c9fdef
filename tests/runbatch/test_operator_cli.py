"""`runbatch jobs|models|pools` against a real `runbatch server`, with real jobs: exact tables and messages."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from runbatch.cli import app
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler, Sleeper
from tests.services import ServerProcess

POOL = "SYSTEM_COMPUTE_POOL_CPU"
WIDE = {"COLUMNS": "250"}  # tables as wide as they need, whatever the terminal running the tests


@dataclass
class Setup:
    server: ServerProcess
    session: Session
    db: str

    def env(self) -> dict[str, str]:
        return {"RUNBATCH_API_URL": self.server.url, "RUNBATCH_TOKEN": self.server.token, **WIDE}

    def api(self, path: str) -> object:
        response = httpx.get(f"{self.server.url}/api/v1{path}", headers=self.server.auth, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def setup(server_process: ServerProcess, http_session: Session) -> Iterator[Setup]:
    """A database of this module's own with a finished two-shard job, CLI_DONE, of five rows."""
    db = f"CLI_{uuid.uuid4().hex[:8].upper()}"
    session = http_session
    session.sql(f"CREATE DATABASE {db}").collect()
    session.sql("CREATE STAGE DATA").collect()
    registry = Registry(session, database_name=db, schema_name="PUBLIC")
    sample = pd.DataFrame({"X": [1.0]})
    mv = registry.log_model(Doubler(), model_name="DOUBLER", version_name="V1", sample_input_data=sample)
    registry.log_model(Sleeper(), model_name="SLEEPER", version_name="V1", sample_input_data=sample)
    job = mv.run_batch(
        session.create_dataframe([(float(i),) for i in range(5)], schema=["X"]),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=f"@{db}.PUBLIC.DATA/done/"),
        job_spec=JobSpec(job_name="CLI_DONE", replicas=2),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    yield Setup(server_process, session, db)


def _cli(setup: Setup, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=setup.env() if env is None else env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _cells(line: str) -> list[str]:
    """A table line's cells: columns are at least two spaces apart."""
    return re.split(r"\s{2,}", line.strip())


def _utc(at: str) -> str:
    return pd.Timestamp(at).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def test_jobs_list(setup: Setup) -> None:
    job = setup.api(f"/databases/{setup.db}/schemas/PUBLIC/jobs/CLI_DONE")
    assert isinstance(job, dict)
    code, out, err = _cli(setup, "jobs", "list", "--database", setup.db.lower())
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [_cells(line) for line in lines] == [
        ["JOB", "STATUS", "ROWS", "SHARDS", "POOL", "MODEL", "VERSION", "CREATED (UTC)"],
        [
            f"{setup.db}.PUBLIC.CLI_DONE",
            "DONE",
            "5/5 (100%)",
            "2/2",
            POOL,
            f"{setup.db}.PUBLIC.DOUBLER",
            "V1",
            _utc(job["created_at"]),
        ],
    ]
    assert _cli(setup, "jobs", "list", "--database", setup.db, "--status", "failed") == (0, "No jobs.\n", "")
    code, _, err = _cli(setup, "jobs", "list", "--status", "finished")
    assert code == 2
    assert (
        "'finished' is not a job status; use one of PENDING, RUNNING, CANCELLING, CANCELLED, DELETED," in err
    )


def test_jobs_show(setup: Setup) -> None:
    job = setup.api(f"/databases/{setup.db}/schemas/PUBLIC/jobs/CLI_DONE")
    shards = setup.api(f"/databases/{setup.db}/schemas/PUBLIC/jobs/CLI_DONE/shards")
    assert isinstance(job, dict) and isinstance(shards, list)
    # A bare name is found in whatever schema holds it.
    code, out, err = _cli(setup, "jobs", "show", "CLI_DONE")
    assert (code, err) == (0, "")
    details, shard_table = out.split("\n\n")
    cells = [_cells(line) for line in details.splitlines()]
    assert cells[:14] == [
        ["Job", f"{setup.db}.PUBLIC.CLI_DONE"],
        ["Status", "DONE"],
        ["Phase", "FINISHED"],
        ["Model", f"{setup.db}.PUBLIC.DOUBLER version V1, function predict"],
        ["Compute pool", POOL],
        ["Owner", "admin"],
        ["Input", f"@{setup.db}.PUBLIC.DATA/done/_temporary/input/"],
        ["Output", f"@{setup.db}.PUBLIC.DATA/done/"],
        ["Rows", "5/5 (100%)"],
        ["Shards", "2/2 done, 0 failed"],
        ["Created", _utc(job["created_at"])],
        ["Started", _utc(job["started_at"])],
        ["Finished", _utc(job["finished_at"])],
        ["Duration", cells[13][1]],
    ]
    seconds = (pd.Timestamp(job["finished_at"]) - pd.Timestamp(job["started_at"])).total_seconds()
    assert cells[13][1] == f"{seconds:.1f}s"
    assert cells[14] == ["Throughput", f"{5 / seconds:,.1f} rows/s"]
    assert len(cells) == 15
    assert [_cells(line) for line in shard_table.splitlines()] == [
        ["SHARD", "STATE", "ATTEMPT", "ROWS", "FAILED", "WORKER", "MESSAGE"],
        *[
            [str(s["index"]), "DONE", "1/2", f"{s['rows_total']}/{s['rows_total']}", "0", s["worker"]]
            for s in shards
        ],
    ]
    assert sorted(s["rows_total"] for s in shards) == [2, 3]
    # Qualified, or narrowed with options: the same job; --watch of an ended DONE job exits 0 at once.
    assert _cli(setup, "jobs", "show", f"{setup.db}.PUBLIC.CLI_DONE", "--watch") == (0, out, "")
    assert _cli(setup, "jobs", "show", "PUBLIC.CLI_DONE", "--database", setup.db) == (0, out, "")


def test_jobs_logs(setup: Setup) -> None:
    base = f"/databases/{setup.db}/schemas/PUBLIC/jobs/CLI_DONE/logs"
    every = setup.api(base)
    first = setup.api(base + "?instance_id=0")
    assert isinstance(every, dict) and isinstance(first, dict)
    name = f"{setup.db}.PUBLIC.CLI_DONE"
    assert _cli(setup, "jobs", "logs", name, "--instance", "0") == (
        0,
        "".join(f"{e['line']}\n" for e in first["data"]),
        "",
    )
    prefixed = [f"[{e['instance_id']}] {e['line']}\n" for e in every["data"]]
    assert {e["instance_id"] for e in every["data"]} == {0, 1}
    assert _cli(setup, "jobs", "logs", name) == (0, "".join(prefixed), "")
    assert _cli(setup, "jobs", "logs", name, "--limit", "2") == (0, "".join(prefixed[-2:]), "")
    # Follow on an ended job prints what there is and returns.
    assert _cli(setup, "jobs", "logs", name, "--follow") == (0, "".join(prefixed), "")


class _Lines:
    """A command's output lines as they come (a thread reads them, so waiting can time out)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=10)

    def next(self, timeout: float = 60) -> str | None:
        return self.lines.get(timeout=timeout)

    def rest(self, timeout: float = 60) -> list[str]:
        self.proc.wait(timeout)
        found = []
        while (line := self.next()) is not None:
            found.append(line)
        return found


def test_cancel_a_running_job_while_watching_and_following_it(setup: Setup) -> None:
    mv = (
        Registry(setup.session, database_name=setup.db, schema_name="PUBLIC")
        .get_model("SLEEPER")
        .version("V1")
    )
    job = mv.run_batch(
        setup.session.create_dataframe([(float(i),) for i in range(3_000)], schema=["X"]),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=f"@{setup.db}.PUBLIC.DATA/slow/"),
        job_spec=JobSpec(job_name="CLI_SLOW", max_batch_rows=10),
    )
    name = f"{setup.db}.PUBLIC.CLI_SLOW"
    env = dict(os.environ, **setup.env())
    command = [sys.executable, "-m", "runbatch.cli", "jobs"]
    watch = _Lines(
        subprocess.Popen([*command, "show", name, "--watch"], env=env, stdout=subprocess.PIPE, text=True)
    )
    follow = _Lines(
        subprocess.Popen([*command, "logs", name, "--follow"], env=env, stdout=subprocess.PIPE, text=True)
    )
    try:
        # Both are following the job before it is cancelled: without a terminal, --watch prints a
        # line per status; the log has lines once the runtime started.
        first_status = watch.next()
        assert first_status is not None and re.fullmatch(rf"{name} (PENDING|RUNNING) .*", first_status)
        first_log = follow.next()
        assert first_log is not None and first_log.startswith("[0] ")
        assert job.status in ("PENDING", "RUNNING")
        assert _cli(setup, "jobs", "cancel", "CLI_SLOW", "--database", setup.db) == (
            0,
            f"Job {name} is CANCELLING.\n",
            "",
        )
        assert job.wait(60) == "CANCELLED"
        watched = watch.rest()
        followed = follow.rest()
    finally:
        watch.close()
        follow.close()
    assert watch.proc.returncode == 1  # --watch exits 1 for an end other than DONE
    statuses = [line for line in watched if line.startswith(name + " ")]
    assert statuses[-1].startswith(f"{name} CANCELLED ")
    assert _cells(watched[len(statuses) + 1]) == ["Status", "CANCELLED"]
    assert follow.proc.returncode == 0
    assert followed[-1] == "[0] [runbatch] Stopped on request."
    assert _cli(setup, "jobs", "cancel", name) == (
        0,
        f"Job {name} already ended CANCELLED; nothing to cancel.\n",
        "",
    )


def test_models_list(setup: Setup) -> None:
    models = {m["name"]: m for m in setup.api(f"/databases/{setup.db}/schemas/PUBLIC/models")}  # type: ignore[attr-defined]
    code, out, err = _cli(setup, "models", "list", "--database", setup.db, "--schema", "public")
    assert (code, err) == (0, "")
    rows = [_cells(line) for line in out.splitlines()]
    assert rows[0] == ["MODEL", "TYPE", "DEFAULT", "VERSIONS", "OWNER", "CREATED (UTC)"]
    expected = [
        [f"{setup.db}.PUBLIC.{name}", "custom", "V1", "V1", "admin", _utc(models[name]["created_on"])]
        for name in ("DOUBLER", "SLEEPER")
    ]
    assert rows[1:] == expected
    # Without options, every database's models (this one's among them).
    code, out, _ = _cli(setup, "models", "list")
    everywhere = [_cells(line) for line in out.splitlines()]
    assert code == 0 and everywhere[0] == rows[0]
    assert [row for row in everywhere if row[0].startswith(f"{setup.db}.")] == expected
    assert _cli(setup, "models", "list", "--schema", "PUBLIC")[0] == 2  # a schema needs its database


def test_pools_list(setup: Setup) -> None:
    pools = setup.api("/compute-pools")
    assert isinstance(pools, list)
    code, out, err = _cli(setup, "pools", "list")
    assert (code, err) == (0, "")
    assert [_cells(line) for line in out.splitlines()] == [
        ["POOL", "STATE", "INSTANCE FAMILY", "NODES", "WORKERS", "SLOTS", "RUNNING"],
        *[
            [
                p["name"],
                p["state"],
                p["instance_family"],
                f"{p['min_nodes']}-{p['max_nodes']}",
                str(len(p["workers"])),
                str(sum(w["slots"] for w in p["workers"])),
                str(p["running_shards"]),
            ]
            for p in pools
        ],
    ]
    assert [p["name"] for p in pools][:2] == ["SYSTEM_COMPUTE_POOL_CPU", "SYSTEM_COMPUTE_POOL_GPU"]


def test_errors_name_the_problem_and_the_fix(setup: Setup) -> None:
    assert _cli(setup, "jobs", "list", env=WIDE) == (
        2,
        "",
        "Set RUNBATCH_API_URL and RUNBATCH_TOKEN (or pass --url and --token) to name the control plane; the "
        "admin token of a `runbatch server` is in its $RUNBATCH_HOME/token.\n",
    )
    # --url and --token stand in for the variables.
    code, out, _ = _cli(
        setup, "pools", "list", "--url", setup.server.url, "--token", setup.server.token, env=WIDE
    )
    assert code == 0 and out.startswith("POOL")
    assert _cli(setup, "jobs", "show", "NOPE") == (
        1,
        "",
        "Error: There is no job named NOPE; `runbatch jobs list` shows the jobs.\n",
    )
    assert _cli(setup, "jobs", "show", "NOPE", "--database", setup.db) == (
        1,
        "",
        f"Error: There is no job named NOPE in {setup.db}; `runbatch jobs list` shows the jobs.\n",
    )
    code, _, err = _cli(setup, "jobs", "list", env={**setup.env(), "RUNBATCH_TOKEN": "rbt_nope"})
    assert code == 1 and err.startswith("Error: ")


def test_a_bare_name_of_two_jobs_must_be_qualified(setup: Setup) -> None:
    session = setup.session
    session.sql(f"CREATE SCHEMA {setup.db}.OTHER").collect()
    mv = Registry(session, database_name=setup.db, schema_name="PUBLIC").get_model("DOUBLER").version("V1")
    frame = session.create_dataframe([(1.0,)], schema=["X"])
    for schema in ("PUBLIC", "OTHER"):
        session.sql(f"CREATE STAGE IF NOT EXISTS {setup.db}.{schema}.DATA").collect()
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location=f"@{setup.db}.{schema}.DATA/twin/"),
            job_spec=JobSpec(job_name=f"{setup.db}.{schema}.TWIN"),  # the model's schema unless named
        ).wait(60)
    assert _cli(setup, "jobs", "show", "TWIN", "--database", setup.db) == (
        1,
        "",
        f"Error: 2 jobs are named TWIN ({setup.db}.OTHER.TWIN, {setup.db}.PUBLIC.TWIN); name one as "
        "DATABASE.SCHEMA.NAME.\n",
    )
    code, out, _ = _cli(setup, "jobs", "show", "TWIN", "--database", setup.db, "--schema", "OTHER")
    assert code == 0 and _cells(out.splitlines()[0]) == ["Job", f"{setup.db}.OTHER.TWIN"]
    # A list cut short says so.
    listed = setup.api(f"/jobs?database={setup.db}&limit=1")
    assert isinstance(listed, dict) and listed["count"] >= 3
    code, out, _ = _cli(setup, "jobs", "list", "--database", setup.db, "--limit", "1")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert _cells(lines[1])[0] == f"{setup.db}.OTHER.TWIN"  # the newest
    assert lines[2] == f"1 of {listed['count']} jobs; --limit 0 lists all."


def test_the_installed_command_runs_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runbatch.cli", "jobs", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, **WIDE),
    )
    assert result.returncode == 0, result.stderr
    assert "Batch jobs: list, show (with a live progress bar), logs, cancel." in result.stdout
    for command in ("list", "show", "logs", "cancel"):
        assert re.search(rf"│ {command}\s", result.stdout), result.stdout
