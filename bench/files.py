"""File-input benchmark: 10k small images on S3 (moto), read by the runtime with and without fetch overlap.

    python bench/files.py [--images 10000] [--size 32] [--repeats 3]

Each row of the input names one PNG on an external S3 stage (moto's server in its own process);
the shard pipeline (``runbatch.runtime.pipeline``, exactly what a runtime runs) reads each file
through the stage's storage and hands its bytes to the model. Three fetch settings, side by side:

- ``off``: one file at a time, in the model's thread, when the batch's turn comes
  (``RUNBATCH_FILE_FETCH_THREADS=1 RUNBATCH_FILE_PREFETCH=false``);
- ``concurrent``: 16 threads read a batch's files, still only when its turn comes
  (``RUNBATCH_FILE_PREFETCH=false``);
- ``on`` (the default): 16 threads, and the files of upcoming batches are read while the model
  works, within the prefetch budget (1,024 rows, 256 MB).

Two models: ``decode`` (Pillow decodes each image and takes its mean: CPU work that holds the GIL
part of the time) and ``accelerator`` (the same, plus 100 ms per batch of 64 images spent outside
the GIL, as a GPU call is). For reference, the model alone over images already in memory, and
the files alone (16 threads, no model). Then one whole runbatch job (embedded control plane,
default settings) over the same images. Each configuration runs ``--repeats`` times, interleaved;
medians are reported. Results go to bench/results/files.json and are printed as Markdown.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's service starters

from bench.tabular import machine  # noqa: E402
from runbatch.inference.function import ModelFunction  # noqa: E402
from runbatch.ml.model import custom_model  # noqa: E402
from runbatch.ml.model.batch import FileEncoding, InputFormat, InputSpec, JobSpec, OutputSpec  # noqa: E402
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature  # noqa: E402
from runbatch.ml.registry import Registry  # noqa: E402
from runbatch.runtime.pipeline import FILE_BATCH_ROWS, PipelineConfig, run_pipeline  # noqa: E402
from runbatch.runtime.stage_files import MountedStage, StageFiles  # noqa: E402
from runbatch.snowpark import Session  # noqa: E402
from runbatch.stage.storage import StorageConfig, open_storage  # noqa: E402
from runbatch.wire.jobs import InputSlice  # noqa: E402
from tests.services import MotoProcess  # noqa: E402

SIGNATURE = ModelSignature([FeatureSpec("IMAGES", DataType.BYTES)], [FeatureSpec("MEAN", DataType.DOUBLE)])
ACCELERATOR_S = 0.1  # per batch of FILE_BATCH_ROWS images
SETTINGS = {
    "off": {"fetch_threads": 1, "prefetch": False},
    "concurrent": {"fetch_threads": 16, "prefetch": False},
    "on": {"fetch_threads": 16, "prefetch": True},
}


def decode(images: list[bytes]) -> list[float]:
    return [float(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).mean()) for b in images]


def model(name: str) -> Any:
    def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:  # noqa: ARG001 - the model API
        means = decode(list(df["IMAGES"]))
        if name == "accelerator":
            time.sleep(ACCELERATOR_S * len(df) / FILE_BATCH_ROWS)
        return pd.DataFrame({"MEAN": means})

    return call


class MeanPixel(custom_model.CustomModel):
    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"MEAN": decode(list(X["IMAGES"]))})


def make_images(client: Minio, bucket: str, n: int, size: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    images = []
    for _ in range(n):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())

    def put(i: int) -> None:
        client.put_object(bucket, f"imgs/{i:05d}.png", io.BytesIO(images[i]), len(images[i]))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(n)))
    return images


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def time_pipeline(
    folder: Path, s3: StorageConfig, n: int, model_name: str, setting: str, expected: list[float]
) -> dict[str, Any]:
    local = open_storage(f"file://{folder}")
    files = StageFiles({("BENCH", "PUBLIC", "EXT"): MountedStage(open_storage(s3), "")})
    cfg = PipelineConfig(
        input_storage=local,
        output_storage=local,
        slices=[InputSlice(key="input/paths.parquet", offset=0, rows=n)],
        output_prefix=f"out/{model_name}-{setting}",
        shard_index=0,
        batch_rows=FILE_BATCH_ROWS,
        feature_columns={"IMAGES": "IMAGES"},
        params={},
        column_handling={"IMAGES": {"input_format": "full_stage_path", "convert_to": "raw_bytes"}},
        files=files,
        **SETTINGS[setting],  # type: ignore[arg-type]
    )
    fn = ModelFunction("predict", SIGNATURE, model(model_name), "FUNCTION", False)
    started = time.perf_counter()
    written = run_pipeline(fn, cfg, lambda rows: None)
    elapsed = time.perf_counter() - started
    out = pa.concat_tables(pq.read_table(local.open_input_file(f.key)) for f in written)
    assert out.num_rows == n and np.allclose(out.column("MEAN").to_numpy(), expected), "wrong output"
    local.delete_prefix(f"out/{model_name}-{setting}/")
    return {"seconds": round(elapsed, 2), "images_per_s": round(n / elapsed)}


def time_fetch_only(s3: StorageConfig, n: int) -> dict[str, Any]:
    storage = open_storage(s3)
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: storage.read_bytes(f"imgs/{i:05d}.png"), range(n)))
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 2), "images_per_s": round(n / elapsed)}


def time_model_only(model_name: str, images: list[bytes]) -> dict[str, Any]:
    call = model(model_name)
    started = time.perf_counter()
    for lo in range(0, len(images), FILE_BATCH_ROWS):
        call(pd.DataFrame({"IMAGES": images[lo : lo + FILE_BATCH_ROWS]}), {})
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 2), "images_per_s": round(len(images) / elapsed)}


def time_job(home: Path, moto: MotoProcess, bucket: str, n: int, expected: list[float]) -> dict[str, Any]:
    session = Session.builder.configs({"home": str(home)}).create()
    session.sql("CREATE DATABASE BENCH").collect()
    session.sql("CREATE STAGE DATA").collect()
    session.sql(
        f"CREATE STAGE EXT URL = 's3://{bucket}/' ENDPOINT = '{moto.endpoint}' "
        f"CREDENTIALS = (AWS_KEY_ID = '{moto.access_key}' AWS_SECRET_KEY = '{moto.secret_key}')"
    ).collect()
    paths = pd.DataFrame({"ID": np.arange(n), "IMAGES": [f"@EXT/imgs/{i:05d}.png" for i in range(n)]})
    mv = Registry(session).log_model(MeanPixel(), model_name="MEAN_PIXEL", signatures={"predict": SIGNATURE})
    started = time.perf_counter()
    job = mv.run_batch(
        session.create_dataframe(paths),
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        input_spec=InputSpec(
            column_handling={
                "IMAGES": {"input_format": InputFormat.FULL_STAGE_PATH, "convert_to": FileEncoding.RAW_BYTES}
            }
        ),
        output_spec=OutputSpec(stage_location="@DATA/out/"),
        job_spec=JobSpec(block=True),
    )
    elapsed = time.perf_counter() - started
    assert job.status == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/out/").to_pandas().sort_values("ID")
    assert np.allclose(out["MEAN"].to_numpy(), expected), "wrong output"
    session.close()
    return {"seconds": round(elapsed, 2), "images_per_s": round(n / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "files.json")
    args = parser.parse_args()
    n = args.images

    folder = Path(tempfile.mkdtemp(prefix="runbatch-bench-files-"))
    moto = MotoProcess()
    try:
        client = Minio(
            f"127.0.0.1:{moto.port}", access_key=moto.access_key, secret_key=moto.secret_key, secure=False
        )
        bucket = "bench-images"
        client.make_bucket(bucket)
        t = time.perf_counter()
        images = make_images(client, bucket, n, args.size)
        print(
            f"generated and uploaded {n:,} images ({sum(map(len, images)) / n:,.0f} bytes each) in "
            f"{time.perf_counter() - t:.1f}s"
        )
        expected = decode(images)
        local = open_storage(f"file://{folder}")
        with local.open_output_stream("input/paths.parquet") as sink:
            pq.write_table(
                pa.table({"IMAGES": [f"@BENCH.PUBLIC.EXT/imgs/{i:05d}.png" for i in range(n)]}), sink
            )
        s3 = StorageConfig(
            url=f"s3://{bucket}",
            endpoint_url=moto.endpoint,
            access_key=moto.access_key,
            secret_key=moto.secret_key,
        )

        # Interleaved repetitions, medians: this machine is shared, so load comes and goes.
        runs: dict[str, list[dict[str, Any]]] = {}
        for rep in range(args.repeats):
            runs.setdefault("fetch_only_16_threads", []).append(time_fetch_only(s3, n))
            for model_name in ("decode", "accelerator"):
                runs.setdefault(f"{model_name}/model_only", []).append(time_model_only(model_name, images))
                for setting in SETTINGS:
                    key = f"{model_name}/{setting}"
                    runs.setdefault(key, []).append(
                        time_pipeline(folder, s3, n, model_name, setting, expected)
                    )
            print(
                f"repetition {rep + 1}: " + ", ".join(f"{k} {v[-1]['images_per_s']}" for k, v in runs.items())
            )
        results: dict[str, Any] = {"fetch_only_16_threads": median(runs["fetch_only_16_threads"])}
        for model_name in ("decode", "accelerator"):
            row: dict[str, Any] = {"model_only": median(runs[f"{model_name}/model_only"])}
            for setting in SETTINGS:
                row[setting] = median(runs[f"{model_name}/{setting}"])
            off = row["off"]["seconds"]
            row["speedup_vs_off"] = {k: round(off / row[k]["seconds"], 2) for k in SETTINGS}
            results[model_name] = row
        results["runs"] = runs
        results["job_decode_on"] = time_job(folder / "home", moto, bucket, n, expected)
        print("whole job (decode, defaults):", results["job_decode_on"])

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "input": {
                        "images": n,
                        "side_px": args.size,
                        "format": "PNG",
                        "store": "moto S3, own process",
                    },
                    "batch_rows": FILE_BATCH_ROWS,
                    "accelerator_s_per_batch": ACCELERATOR_S,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
        print_table(results)
    finally:
        moto.stop()


def print_table(results: dict[str, Any]) -> None:
    print("\n| model | fetch | images/s | vs off | time / model alone |")
    print("|---|---|---:|---:|---:|")
    for model_name in ("decode", "accelerator"):
        row = results[model_name]
        alone = row["model_only"]["seconds"]
        for setting in SETTINGS:
            r = row[setting]
            print(
                f"| {model_name} | {setting} | {r['images_per_s']:,} | {row['speedup_vs_off'][setting]:.2f} | "
                f"{r['seconds'] / alone:.2f} |"
            )
        print(
            f"| {model_name} | (model alone, images in memory) | {row['model_only']['images_per_s']:,} | - | 1.00 |"
        )
    print(f"| - | (files alone, 16 threads) | {results['fetch_only_16_threads']['images_per_s']:,} | - | - |")
    print(f"| decode | whole job, defaults | {results['job_decode_on']['images_per_s']:,} | - | - |")


if __name__ == "__main__":
    main()
