"""Container benchmark: what a runtime container costs over a runtime subprocess, with a warm image.

    python bench/containers.py [--repeat 5]

Side by side, in one run, on the machine's Docker engine (scripts/docker-engine) and the CPU
runtime image (built first when missing; not timed):

- start overhead: ``python -c "import runbatch.runtime, sklearn"`` as a subprocess, against the
  same command in a new container of the runtime image (create, start, wait, remove);
- submit -> first row: a job of 20,000 rows on the cluster stack (Postgres, Redis, moto S3, one
  `runbatch worker`), from `run_batch` returning to the first progress report of rows done, with
  the process executor (forked runtimes) and with the docker executor.

Medians of ``--repeat`` runs go to bench/results/containers.json and are printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's service starters

from sklearn.linear_model import LogisticRegression  # noqa: E402

from runbatch.ml.model.batch import JobSpec, OutputSpec  # noqa: E402
from runbatch.ml.registry import Registry  # noqa: E402
from tests.services import MotoServer, running_cluster  # noqa: E402

_IMPORT = "import runbatch.runtime, sklearn"


def start_overhead(client: Any, image: str, repeat: int) -> dict[str, float]:
    process, container = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", _IMPORT], check=True)
        process.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.containers.run(
            image, entrypoint=["python", "-c"], command=[_IMPORT], remove=True, network_mode="host"
        )
        container.append(time.perf_counter() - started)
    return {"process_s": statistics.median(process), "container_s": statistics.median(container)}


def first_row(folder: Path, moto: MotoServer, env: dict[str, str], repeat: int) -> float:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(20_000, 4)), columns=["A", "B", "C", "D"])
    model = LogisticRegression().fit(data, data.A > 0)
    times = []
    folder.mkdir(parents=True)
    with running_cluster(folder, moto, workers=1, worker_env=env) as cluster:
        session = cluster.session()
        session.sql("CREATE DATABASE BENCH").collect()
        session.sql("CREATE STAGE DATA").collect()
        mv = Registry(session).log_model(model, model_name="CLF", sample_input_data=data.head(10))
        frame = session.create_dataframe(data)
        for i in range(repeat + 1):  # the first run warms the image cache and the model cache
            job = mv.run_batch(
                frame,
                compute_pool="SYSTEM_COMPUTE_POOL_CPU",
                output_spec=OutputSpec(stage_location=f"@DATA/run{i}/"),
                job_spec=JobSpec(function_name="predict_proba", max_batch_rows=1_000),
            )
            started = time.perf_counter()
            while not job.info.rows_done and job.status not in ("DONE", "FAILED"):
                time.sleep(0.02)
            if i:
                times.append(time.perf_counter() - started)
            assert job.wait(300) == "DONE", job.get_logs()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import docker

    from worker.images import ImageBuilder

    client = docker.from_env(timeout=600)
    image = ImageBuilder(client).runtime_image("cpu")
    overhead = start_overhead(client, image, args.repeat)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", MotoServer.access_key)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", MotoServer.secret_key)
    moto = MotoServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            process = first_row(Path(tmp) / "p", moto, {"RUNBATCH_EXECUTOR": "process"}, args.repeat)
            container = first_row(
                Path(tmp) / "d",
                moto,
                {
                    "RUNBATCH_EXECUTOR": "docker",
                    "RUNBATCH_DOCKER_CPU_IMAGE": image,
                },
                args.repeat,
            )
    finally:
        moto.stop()
    results = {
        "image": image,
        "docker_storage_driver": client.info().get("Driver"),
        "repeat": args.repeat,
        "start": overhead,
        "first_row": {"process_s": process, "container_s": container},
    }
    out = ROOT / "bench" / "results" / "containers.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("| Measure | subprocess | container | ratio |")
    print("|---|---|---|---|")
    print(
        f"| start: `{_IMPORT}` | {overhead['process_s']:.2f} s | {overhead['container_s']:.2f} s | "
        f"{overhead['container_s'] / overhead['process_s']:.2f}x |"
    )
    print(
        f"| submit -> first row (20,000-row job) | {process:.2f} s | {container:.2f} s | {container / process:.2f}x |"
    )


if __name__ == "__main__":
    main()
