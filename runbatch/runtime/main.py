"""One shard attempt from start to end: fetch the work order, load the model, run, report."""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from runbatch.client import ControlPlaneClient
from runbatch.errors import AuthenticationError, ConflictError, NotFoundError, RunbatchError
from runbatch.inference import LoadedModel
from runbatch.inference.function import ModelFunction
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.packager.meta import ModelMeta
from runbatch.runtime import EXIT_CANCELLED, EXIT_OK, EXIT_REPORTED_FAILURE
from runbatch.runtime.pipeline import (
    FILE_BATCH_ROWS,
    PipelineConfig,
    ShardPipeline,
    Stopped,
    auto_batch_rows,
)
from runbatch.runtime.settings import RuntimeSettings
from runbatch.runtime.stage_files import MountedStage, StageFiles
from runbatch.stage.storage import open_storage
from runbatch.wire.jobs import ShardWork

__all__ = ["after_fork", "main", "preload"]

log = logging.getLogger("runbatch.runtime")


class _Reporter:
    """Reports rows written every interval; a ``cancel`` answer stops the pipeline."""

    def __init__(
        self, client: ControlPlaneClient, work: ShardWork, interval: float, stop: threading.Event
    ) -> None:
        self.client, self.work, self.interval, self.stop = client, work, interval, stop
        self.rows = 0
        self.failed: Callable[[], int] = lambda: 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self.cancelled = False

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                ack = self.client.progress(self.work.shard_id, self.work.attempt, self.rows, self.failed())
            except (NotFoundError, AuthenticationError) as exc:
                # The shard was deleted, or this attempt was superseded (its token revoked).
                log.warning("stopping: %s", exc)
                self.cancelled = True
                self.stop.set()
                return
            except RunbatchError as exc:
                log.warning("progress report failed: %s", exc)
                continue
            if ack.cancel:
                self.cancelled = True
                self.stop.set()
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def run(settings: RuntimeSettings) -> int:
    client = ControlPlaneClient(settings.api_url, settings.shard_token.get_secret_value())
    work = client.shard_work(settings.shard_id)
    log.info(
        "Job %s shard %d/%d attempt %d (pid %d): %d input rows, model %s version %s, function %s.",
        work.job_name,
        work.index,
        work.replicas,
        work.attempt,
        os.getpid(),
        sum(s.rows for s in work.slices),
        work.model_name,
        work.version_name,
        work.function_name,
    )
    # A local root is read in place; a remote one is fetched once per host into the cache.
    model_dir = open_storage(work.model_storage).local_path(work.model_key, settings.cache_dir)
    input_storage = open_storage(work.input_storage)
    try:
        meta = ModelMeta.read(model_dir / "model")
    except Exception as exc:
        return _report_failure(client, work, "Reading the model's metadata failed", exc)
    cap = (meta.method_options.get(work.function_name) or {}).get("max_batch_size")
    if work.column_handling:
        cap = min(cap or FILE_BATCH_ROWS, FILE_BATCH_ROWS)
    batch_rows = work.max_batch_rows or auto_batch_rows(input_storage, work.slices, cap)
    cfg = PipelineConfig(
        input_storage=input_storage,
        output_storage=open_storage(work.output_storage),
        slices=work.slices,
        output_prefix=work.output_prefix,
        shard_index=work.index,
        batch_rows=batch_rows,
        feature_columns=work.feature_columns,
        params=work.params,
        column_handling=work.column_handling,
        default_database=work.default_database,
        default_schema=work.default_schema,
        num_workers=work.num_workers or 1,
        partition_column=work.partition_column,
        partition_shards=work.replicas,
        files=_stage_files(work),
        fetch_threads=settings.file_fetch_threads,
        prefetch=settings.file_prefetch,
        prefetch_rows=settings.file_prefetch_rows,
        prefetch_bytes=settings.file_prefetch_bytes,
        fail_fast=work.fail_fast,
        max_failed_rows=work.max_failed_rows,
    )
    pipeline = ShardPipeline(cfg)
    pipeline.start_reading()  # decode the first batches while the model's framework loads
    started = time.monotonic()
    try:
        fn = _function(work, model_dir)
    except Exception as exc:
        pipeline.close()
        return _report_failure(client, work, "Loading the model failed", exc)
    log.info("Model loaded in %.2fs.", time.monotonic() - started)
    reporter = _Reporter(client, work, settings.progress_interval_s, cfg.stop)
    reporter.failed = lambda: pipeline.rows_failed
    reporter.start()
    print("Starting inference.", flush=True)  # noqa: T201 - the user-facing line Snowflake jobs log
    log.info("Batches of up to %d rows, %d model worker(s).", batch_rows, cfg.num_workers)
    started = time.monotonic()
    try:
        files = pipeline.run(fn, lambda rows: setattr(reporter, "rows", rows))
    except Stopped:
        reporter.close()
        log.info("Stopped on request after %d rows.", reporter.rows)
        return EXIT_CANCELLED
    except Exception as exc:
        reporter.close()
        return _report_failure(client, work, "Inference failed", exc)
    reporter.close()
    rows = pipeline.rows_in
    elapsed = time.monotonic() - started
    data_files = [f for f in files if f.kind == "data"]
    log.info(
        "Processed %d rows and wrote %d in %d file(s) in %.2fs (%.0f rows/s).",
        rows,
        sum(f.rows for f in data_files),
        len(data_files),
        elapsed,
        rows / max(elapsed, 1e-9),
    )
    if pipeline.rows_failed:
        log.warning(
            "%d input rows failed; they are in the job's error rows (_errors/).", pipeline.rows_failed
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.info(
        "Peak RSS: %.1f MiB. CPU: %.2fs user, %.2fs system.", _peak_rss_mib(), usage.ru_utime, usage.ru_stime
    )
    try:
        client.complete_shard(
            work.shard_id, work.attempt, files, rows_done=rows, rows_failed=pipeline.rows_failed
        )
    except ConflictError as exc:
        log.warning("%s", exc)
        return EXIT_CANCELLED
    print("Inference finished.", flush=True)  # noqa: T201 - user-facing, as above
    return EXIT_OK


def _function(work: ShardWork, model_dir: Path) -> ModelFunction:
    """The function to run: in the engine the job chose (vLLM), else in the model's own handler."""
    engine = work.inference_engine or {}
    if engine.get("inference_engine_name") == InferenceEngine.VLLM.value:
        from runbatch.runtime.engines.vllm import vllm_function

        return vllm_function(model_dir, work.function_name, list(engine.get("inference_engine_args") or []))
    return LoadedModel.from_dir(model_dir).function(work.function_name)


def _stage_files(work: ShardWork) -> StageFiles:
    """The stages the job's file columns name, each opened once for the whole shard."""
    mounts = {
        (s.database, s.schema_, s.stage): MountedStage(open_storage(s.storage), s.root_key)
        for s in work.file_stages
    }
    return StageFiles(mounts, default_database=work.default_database, default_schema=work.default_schema)


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). ru_maxrss is not used: it survives exec, so a
    runtime forked from a large worker would report the worker's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report_failure(client: ControlPlaneClient, work: ShardWork, what: str, exc: Exception) -> int:
    traceback.print_exc()
    message = f"{what}: {type(exc).__name__}: {exc}"
    log.error("%s", message)
    try:
        client.fail_shard(work.shard_id, work.attempt, message[:4000], retryable=False)
    except RunbatchError as report_error:
        log.error("could not report the failure: %s", report_error)
        return 1
    return EXIT_REPORTED_FAILURE


def preload() -> None:
    """Import what every shard needs, and the model frameworks ``RUNBATCH_PRELOAD`` names, ahead of
    any shard: the fork server does this once for all the runtimes it forks."""
    import importlib

    import pyarrow.parquet  # noqa: F401
    import threadpoolctl  # noqa: F401

    import runbatch.inference  # noqa: F401
    import runbatch.runtime.pipeline  # noqa: F401

    for name in filter(None, os.environ.get("RUNBATCH_PRELOAD", "").split(",")):
        try:
            importlib.import_module(name.strip())
        except ImportError:
            pass


def after_fork() -> None:
    """In a runtime forked from the fork server, once the shard's environment is set."""
    import threadpoolctl

    threads = os.environ.get("RUNBATCH_THREADS")
    if threads:
        # BLAS read their thread counts when numpy was imported; set them again for this shard.
        threadpoolctl.threadpool_limits(int(threads))
    # Forked runtimes would otherwise share the server's random state: sampled generations and
    # unseeded models would repeat each other across shards. (Python's own random reseeds itself.)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def main() -> int:
    settings = RuntimeSettings()
    logging.basicConfig(
        level=settings.runtime_log_level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return run(settings)
