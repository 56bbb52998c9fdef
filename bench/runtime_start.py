"""Runtime start benchmark: runtimes forked from the fork server against new interpreters.

    python bench/runtime_start.py [--jobs 12] [--replicas 2]

Two embedded control planes, one with ``RUNBATCH_FORK_RUNTIMES=true`` (the default) and one with
``false``, each run the same small jobs one after another (a LogisticRegression over 1,000 rows,
``replicas`` shards each), so a job's time is mostly the runtime's start, model load and reports.
Reported: the median seconds from ``run_batch`` to ``wait()``, and the CPU seconds the control
plane and its runtimes used for all jobs together (both include the server's own polling). One
run, interleaved job by job; results go to bench/results/runtime_start.json, printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbatch.ml.model.batch import JobSpec, OutputSpec  # noqa: E402
from runbatch.ml.registry import Registry  # noqa: E402
from tests.services import ServerProcess  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and its descendants: the live ones (the fork server) and the reaped ones
    (the runtimes), each counted once."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    seconds = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                seconds += _cpu_seconds(int(child))
            except FileNotFoundError:
                pass  # ended meanwhile
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "runtime_start.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(1000, 8)), columns=[f"F{i}" for i in range(8)])
    model = LogisticRegression().fit(features, rng.integers(0, 2, 1000))
    modes = {"fork": "true", "cold": "false"}
    folder = Path(tempfile.mkdtemp(prefix="runbatch-bench-start-"))
    servers = {}
    try:
        for mode, flag in modes.items():
            (folder / mode).mkdir()
            servers[mode] = ServerProcess(
                folder / mode,
                {"RUNBATCH_FORK_RUNTIMES": flag, "RUNBATCH_PRELOAD": "sklearn", "RUNBATCH_SLOTS": "2"},
            )
        versions = {}
        for mode, server in servers.items():
            session = server.session()
            session.sql("CREATE DATABASE BENCH").collect()
            session.sql("CREATE STAGE OUT").collect()
            versions[mode] = (
                session,
                Registry(session).log_model(
                    model, model_name="LR", version_name="V1", sample_input_data=features.head(5)
                ),
            )
        time.sleep(5)  # both fork servers (and their imports) ready before anything is timed
        seconds: dict[str, list[float]] = {mode: [] for mode in modes}
        cpu_before = {mode: _cpu_seconds(s.proc.pid) for mode, s in servers.items()}  # type: ignore[union-attr]
        for i in range(args.jobs):
            for mode, (session, mv) in versions.items():
                t = time.perf_counter()
                job = mv.run_batch(
                    session.create_dataframe(features),
                    compute_pool="SYSTEM_COMPUTE_POOL_CPU",
                    output_spec=OutputSpec(stage_location=f"@OUT/run{i}/"),
                    job_spec=JobSpec(function_name="predict", replicas=args.replicas),
                )
                assert job.wait(300) == "DONE", job.get_logs()
                seconds[mode].append(time.perf_counter() - t)
        cpu = {mode: _cpu_seconds(s.proc.pid) - cpu_before[mode] for mode, s in servers.items()}  # type: ignore[union-attr]
    finally:
        for server in servers.values():
            server.stop()
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "jobs": args.jobs,
        "replicas": args.replicas,
        "median_job_s": {mode: statistics.median(v) for mode, v in seconds.items()},
        "cpu_s": cpu,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    fork, cold = result["median_job_s"]["fork"], result["median_job_s"]["cold"]
    print(f"| runtimes | median job (s) | CPU for {args.jobs} jobs (s) |\n|---|---|---|")
    for mode in modes:
        print(f"| {mode} | {result['median_job_s'][mode]:.2f} | {cpu[mode]:.1f} |")
    print(f"\ncold / fork: job time {cold / fork:.2f}x, CPU {cpu['cold'] / cpu['fork']:.2f}x")


if __name__ == "__main__":
    main()
