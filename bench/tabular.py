"""Tabular benchmark: runbatch against a bare read-predict-write loop over the same Parquet files.

    python bench/tabular.py [--rows 10000000] [--files 8] [--features 16]

One run, side by side, for two models (a LogisticRegression, whose per-row cost is tiny, and a
small MLP, whose per-row cost dominates):

- the bare loop: one process reads each file with pyarrow, calls ``predict_proba`` per record
  batch and writes Parquet (with runbatch's writer settings, so the ratio measures runbatch's
  own overhead; pyarrow's default writer is also timed once, for context);
- the bare loop split over two processes: the ceiling two cores give this workload;
- runbatch, embedded default, input read in place from a stage, replicas=1 and replicas=2.

Each configuration runs three times, interleaved; medians are reported. Every runbatch job starts
from an idle worker (its fork server started). Then runbatch replicas=1 on a 1M-row input, to
compare the runtime's peak memory with the 10M-row run. Results go to bench/results/tabular.json
and are printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session

BATCH_ROWS = 65_536  # what runbatch picks for 16 float64 columns (about 8 MB per batch)
IDLE_BEFORE_JOB_S = 4.0
REPEATS = 3


def make_data(folder: Path, rows: int, files: int, features: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = rows // files
    for i in range(files):
        n = per_file if i < files - 1 else rows - per_file * (files - 1)
        columns = {f"F{j}": rng.normal(size=n) for j in range(features)}
        pq.write_table(pa.table(columns), folder / f"part-{i:03d}.parquet")


def bare_loop(
    model: Any,
    inputs: list[Path] | list[str],
    out_dir: Path | str,
    float_dictionary: bool = False,
    filesystem: Any = None,
    pre_buffer: bool = False,
) -> None:
    """The baseline: no pipelining, no control plane. ``float_dictionary`` is pyarrow's default;
    ``filesystem`` a pyarrow filesystem (S3) the paths are on, None for local paths;
    ``pre_buffer`` coalesces each row group's reads (ParquetFile's default is off)."""
    if filesystem is None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for path in inputs:
        writer = None
        source = filesystem.open_input_file(str(path)) if filesystem is not None else path
        for batch in pq.ParquetFile(source, pre_buffer=pre_buffer).iter_batches(batch_size=BATCH_ROWS):
            proba = model.predict_proba(batch.to_pandas())
            table = pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(proba[:, 0]), pa.array(proba[:, 1])],
                names=[*batch.schema.names, "output_feature_0", "output_feature_1"],
            )
            if writer is None:
                plain = [f.name for f in table.schema if not pa.types.is_floating(f.type)] or False
                writer = pq.ParquetWriter(
                    f"{out_dir}/{str(path).rsplit('/', 1)[-1]}",
                    table.schema,
                    filesystem=filesystem,
                    compression="snappy",
                    use_dictionary=True if float_dictionary else plain,
                )
            writer.write_batch(table)
        assert writer is not None
        writer.close()
        if filesystem is not None:
            source.close()


def time_bare(
    model: Any, inputs: list[Path], out_dir: Path, processes: int, rows: int, **kw: Any
) -> dict[str, Any]:
    start = time.perf_counter()
    if processes == 1:
        bare_loop(model, inputs, out_dir, **kw)
    else:
        workers = [
            multiprocessing.get_context("fork").Process(
                target=bare_loop, args=(model, inputs[i::processes], out_dir)
            )
            for i in range(processes)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
            assert w.exitcode == 0
    seconds = time.perf_counter() - start
    shutil.rmtree(out_dir)
    return {"rows": rows, "wall_s": round(seconds, 3), "rows_per_s": round(rows / seconds)}


def run_job(mv: Any, session: Session, location: str, out: str, replicas: int, rows: int) -> dict[str, Any]:
    time.sleep(IDLE_BEFORE_JOB_S)  # start from an idle worker, its fork server ready
    frame = session.read.option("pattern", ".*[.]parquet").parquet(location)
    start = time.perf_counter()
    job = mv.run_batch(
        frame,
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location=out),
        job_spec=JobSpec(function_name="predict_proba", replicas=replicas),
    )
    while job.status == "PENDING":
        time.sleep(0.005)
    running = time.perf_counter()
    status = job.wait()
    wall = time.perf_counter() - start
    info = job.info
    assert status == "DONE" and info.rows_done == rows, (status, info.message)
    rss = []
    for instance in range(info.shards_total):
        rss.extend(
            float(m) for m in re.findall(r"Peak RSS: ([0-9.]+) MiB", job.get_logs(instance_id=instance))
        )
    assert info.started_at is not None
    return {
        "replicas": replicas,
        "rows": rows,
        "wall_s": round(wall, 3),
        "rows_per_s": round(rows / wall),
        "submit_to_running_s": round(running - start, 3),
        "server_created_to_started_s": round((info.started_at - info.created_at).total_seconds(), 3),
        "runtime_peak_rss_mib": max(rss),
    }


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(results, key=lambda r: r["rows_per_s"])[len(results) // 2]


def compare(
    name: str, mv: Any, session: Session, baselines: dict[str, Callable[[], dict[str, Any]]], rows: int
) -> dict[str, Any]:
    """Each baseline (the first is the reference, ``bare``) and runbatch with 1 and 2 replicas,
    interleaved over ``REPEATS`` repetitions; medians and ratios to the reference."""
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in [*baselines, "r1", "r2"]}
    for rep in range(REPEATS):
        for key, timed in baselines.items():
            runs[key].append(timed())
        for label, replicas in (("r1", 1), ("r2", 2)):
            location = f"@DATA/{name}-{label}-{rep}/"
            runs[label].append(run_job(mv, session, "@DATA/big/", location, replicas, rows))
            session.sql(f"REMOVE {location}").collect()
        print(
            f"{name} repetition {rep + 1}: "
            + ", ".join(f"{k} {v[-1]['rows_per_s']:,}" for k, v in runs.items())
        )
    medians = {k: _median(v) for k, v in runs.items()}
    bare = medians["bare"]["rows_per_s"]
    return {
        "runs": runs,
        "medians": medians,
        "ratios": {k: round(v["rows_per_s"] / bare, 3) for k, v in medians.items()},
    }


def bench_model(
    name: str, mv: Any, model: Any, session: Session, inputs: list[Path], home: Path, rows: int
) -> dict[str, Any]:
    out = home / "bare-out"
    return compare(
        name,
        mv,
        session,
        {
            "bare": lambda: time_bare(model, inputs, out, 1, rows),
            "bare_2_processes": lambda: time_bare(model, inputs, out, 2, rows),
        },
        rows,
    )


def train_models(features: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The two benchmark models, trained on synthetic data: (training frame, models by name)."""
    rng = np.random.default_rng(0)
    names = [f"F{j}" for j in range(features)]
    train = pd.DataFrame(rng.normal(size=(20_000, features)), columns=names)
    labels = (train.F0 + train.F1 * train.F2 > 0).astype(int)
    return train, {
        "logistic_regression": LogisticRegression(max_iter=500).fit(train, labels),
        "mlp": MLPClassifier(hidden_layer_sizes=(128, 128), max_iter=20, random_state=0).fit(train, labels),
    }


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def print_table(results: dict[str, Any], labels: dict[str, str], baseline: str) -> None:
    """The medians as a Markdown table; runbatch rows (keys r1, r2) add start latency and memory."""
    print(
        f"\n| model | run | rows/s (median of 3) | vs {baseline} | submit->RUNNING s | runtime peak RSS MiB |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name, res in results.items():
        for key, label in labels.items():
            m = res["medians"][key]
            extra = (
                f"{m['submit_to_running_s']} | {m['runtime_peak_rss_mib']:.0f}"
                if key.startswith("r")
                else "- | -"
            )
            print(f"| {name} | {label} | {m['rows_per_s']:,} | {res['ratios'][key]:.2f} | {extra} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="runbatch-bench-"))
    try:
        session = Session.builder.configs({"home": str(home)}).create()
        session.sql("CREATE DATABASE BENCH").collect()
        session.sql("CREATE STAGE DATA").collect()
        stage_dir = home / "storage" / "stages" / "BENCH" / "PUBLIC" / "DATA"
        t = time.perf_counter()
        make_data(stage_dir / "big", args.rows, args.files, args.features, seed=1)
        make_data(stage_dir / "small", args.small_rows, 1, args.features, seed=2)
        print(f"generated {args.rows:,} + {args.small_rows:,} rows in {time.perf_counter() - t:.1f}s")
        inputs = sorted((stage_dir / "big").glob("*.parquet"))

        train, models = train_models(args.features)
        results: dict[str, Any] = {}
        naive = time_bare(
            models["logistic_regression"], inputs, home / "naive-out", 1, args.rows, float_dictionary=True
        )
        for name, model in models.items():
            mv = Registry(session).log_model(model, model_name=name, sample_input_data=train.head(20))
            results[name] = bench_model(name, mv, model, session, inputs, home, args.rows)
        lr_mv = Registry(session).get_model("logistic_regression").default
        small = run_job(lr_mv, session, "@DATA/small/", "@DATA/out-small/", 1, args.small_rows)

        out = Path(__file__).parent / "results" / "tabular.json"
        out.parent.mkdir(exist_ok=True)
        result = {
            "machine": machine(),
            "input": {"rows": args.rows, "files": args.files, "features": args.features, "dtype": "float64"},
            "bare_loop_pyarrow_default_writer": naive,
            "models": results,
            "runbatch_replicas_1_small": small,
        }
        out.write_text(json.dumps(result, indent=2) + "\n")
        print_table(
            results,
            {
                "bare": "bare loop",
                "bare_2_processes": "bare loop, 2 processes",
                "r1": "runbatch replicas=1",
                "r2": "runbatch replicas=2",
            },
            "bare loop",
        )
        bare_lr = results["logistic_regression"]["medians"]["bare"]["rows_per_s"]
        print(
            f"| logistic_regression | bare loop, pyarrow's default writer | {naive['rows_per_s']:,} | "
            f"{naive['rows_per_s'] / bare_lr:.2f} | - | - |"
        )
        print(
            f"| logistic_regression | runbatch replicas=1, {args.small_rows:,} rows | {small['rows_per_s']:,} | - | "
            f"{small['submit_to_running_s']} | {small['runtime_peak_rss_mib']:.0f} |"
        )
        session.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
