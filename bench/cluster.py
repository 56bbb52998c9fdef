"""Cluster benchmark: runbatch on the cluster stack against a bare read-predict-write loop on the same S3.

    python bench/cluster.py [--rows 1000000] [--files 4] [--features 16]

Stack: Postgres (a database of its own on the machine's server), a private redis-server, moto's S3
server in its own process, `runbatch migrate`, `runbatch server` with the broker, and two
`runbatch worker` processes with one slot each. Input: Parquet files on an internal stage, that is
objects in the S3 bucket. One run, side by side, LogisticRegression and the MLP of
bench/tabular.py:

- the bare loop: one process reads each object with pyarrow's S3 filesystem, calls
  ``predict_proba`` per record batch and writes Parquet back to S3 (runbatch's writer settings);
- the bare loop split over two processes;
- the bare loop with pre-buffered reads (the read setting the runtime uses on S3), for context;
- runbatch replicas=1 (one worker busy) and replicas=2 (both workers busy).

Each configuration runs three times, interleaved; medians are reported. Results go to
bench/results/cluster.json and are printed as Markdown. Needs what the test suite needs: Postgres
on RUNBATCH_TEST_POSTGRES_URL (default 127.0.0.1:5432) and redis-server on the PATH.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from minio import Minio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's service starters

from bench.tabular import (  # noqa: E402
    bare_loop,
    compare,
    machine,
    make_data,
    print_table,
    train_models,
)
from runbatch.ml.registry import Registry  # noqa: E402
from tests.services import Cluster, MotoProcess, running_cluster  # noqa: E402

PREFIX = "runbatch"  # the cluster's RUNBATCH_STAGE_URL is s3://<bucket>/runbatch


def _s3(port: int) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=MotoProcess.access_key,
        secret_key=MotoProcess.secret_key,
        endpoint_override=f"127.0.0.1:{port}",
        scheme="http",
        region="us-east-1",
    )


def _bare_child(port: int, model: Any, inputs: list[str], out_dir: str, pre_buffer: bool) -> None:
    bare_loop(model, inputs, out_dir, filesystem=_s3(port), pre_buffer=pre_buffer)


def time_bare_s3(
    moto: MotoProcess,
    model: Any,
    inputs: list[str],
    out_dir: str,
    processes: int,
    rows: int,
    pre_buffer: bool = False,
) -> dict[str, Any]:
    start = time.perf_counter()
    children = [
        multiprocessing.get_context("spawn").Process(
            target=_bare_child, args=(moto.port, model, inputs[i::processes], out_dir, pre_buffer)
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        assert child.exitcode == 0
    seconds = time.perf_counter() - start
    _s3(moto.port).delete_dir_contents(out_dir)
    return {"rows": rows, "wall_s": round(seconds, 3), "rows_per_s": round(rows / seconds)}


def bench_model(
    name: str, mv: Any, model: Any, cluster: Cluster, moto: MotoProcess, inputs: list[str], rows: int
) -> dict[str, Any]:
    session = cluster.session()
    session.use_database("BENCH")
    out = f"{cluster.bucket}/bare-out"
    return compare(
        name,
        mv,
        session,
        {
            "bare": lambda: time_bare_s3(moto, model, inputs, out, 1, rows),
            "bare_2_processes": lambda: time_bare_s3(moto, model, inputs, out, 2, rows),
            "bare_pre_buffer": lambda: time_bare_s3(moto, model, inputs, out, 1, rows, pre_buffer=True),
        },
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "cluster.json",
        help="where results go",
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="runbatch-bench-cluster-"))
    moto = MotoProcess()
    try:
        # One slot per worker, runtimes forked with scikit-learn imported: replicas=2 keeps both
        # worker processes busy.
        env = {"RUNBATCH_SLOTS": "1", "RUNBATCH_PRELOAD": "sklearn"}
        with running_cluster(folder, moto, workers=2, worker_env=env) as cluster:
            session = cluster.session()
            session.sql("CREATE DATABASE BENCH").collect()
            session.sql("CREATE STAGE DATA").collect()
            t = time.perf_counter()
            make_data(folder / "data", args.rows, args.files, args.features, seed=1)
            client = Minio(
                f"127.0.0.1:{moto.port}", access_key=moto.access_key, secret_key=moto.secret_key, secure=False
            )
            keys = []
            for path in sorted((folder / "data").glob("*.parquet")):
                key = f"{PREFIX}/stages/BENCH/PUBLIC/DATA/big/{path.name}"
                client.fput_object(cluster.bucket, key, str(path))
                keys.append(f"{cluster.bucket}/{key}")
            print(f"generated and uploaded {args.rows:,} rows in {time.perf_counter() - t:.1f}s")

            train, models = train_models(args.features)
            results: dict[str, Any] = {}
            for name, model in models.items():
                mv = Registry(session).log_model(model, model_name=name, sample_input_data=train.head(20))
                results[name] = bench_model(name, mv, model, cluster, moto, keys, args.rows)

        out = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": machine(),
            "stack": "Postgres, redis-server, moto S3 server (own process), runbatch server, 2 workers x 1 slot",
            "input": {"rows": args.rows, "files": args.files, "features": args.features, "dtype": "float64"},
            "models": results,
        }
        out.write_text(json.dumps(result, indent=2) + "\n")
        print_table(
            results,
            {
                "bare": "bare loop on S3",
                "bare_2_processes": "bare loop on S3, 2 processes",
                "bare_pre_buffer": "bare loop on S3, pre-buffered reads",
                "r1": "runbatch cluster, replicas=1",
                "r2": "runbatch cluster, replicas=2 (2 workers)",
            },
            "bare loop on S3",
        )
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
