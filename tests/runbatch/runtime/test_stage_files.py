"""Files of file columns: read inside their stage, encoded as asked, fetched ahead within a budget, in order."""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from runbatch.ml.model.batch import FileEncoding
from runbatch.runtime.stage_files import (
    FileFetcher,
    MountedStage,
    Prefetcher,
    RowError,
    StageFiles,
    encode_file,
)
from runbatch.stage.paths import StagePath
from runbatch.stage.storage import LocalStorage, open_storage

INTERNAL_ROOT = "stages/DB/S/IMGS"


@pytest.fixture
def stores(tmp_path: Path) -> tuple[LocalStorage, LocalStorage]:
    internal = open_storage(f"file://{tmp_path}/root")
    external = open_storage(f"file://{tmp_path}/bucket")
    assert isinstance(internal, LocalStorage) and isinstance(external, LocalStorage)
    internal.write_bytes(f"{INTERNAL_ROOT}/a/one.png", b"\x89PNG\r\n\x1a\none")
    internal.write_bytes("stages/DB/S/OTHER/secret.txt", b"secret")
    external.write_bytes("two.bin", b"two")
    return internal, external


@pytest.fixture
def files(stores: tuple[LocalStorage, LocalStorage]) -> StageFiles:
    internal, external = stores
    return StageFiles(
        {
            ("DB", "S", "IMGS"): MountedStage(internal, INTERNAL_ROOT),
            ("DB", "S", "EXT"): MountedStage(external, ""),
        },
        default_database="DB",
        default_schema="S",
    )


def test_rows_read_from_internal_and_external_stages_alike(files: StageFiles) -> None:
    assert files.read("@DB.S.IMGS/a/one.png")[0] == b"\x89PNG\r\n\x1a\none"
    assert files.read("@IMGS/a//./one.png")[0] == b"\x89PNG\r\n\x1a\none"  # current db/schema, normalized
    assert files.read("'@db.s.ext/two.bin'")[0] == b"two"


@pytest.mark.parametrize(
    ("cell", "code", "message"),
    [
        ("@DB.S.IMGS/a/none.png", "FILE_NOT_FOUND", "File @DB.S.IMGS/a/none.png does not exist."),
        ("@DB.S.NOPE/x.png", "STAGE_NOT_FOUND", "Stage 'DB.S.NOPE' does not exist or not authorized."),
        ("@DB.S.IMGS/", "STAGE_PATH_INVALID", "'@DB.S.IMGS/' names a stage, not a file on it."),
        (
            "@DB.S.IMGS/../OTHER/secret.txt",
            "STAGE_PATH_INVALID",
            "The stage path '../OTHER/secret.txt' contains '..', which would leave its stage. Name files "
            "relative to the stage root, e.g. @MY_STAGE/folder/file.parquet.",
        ),
        (
            "one.png",
            "STAGE_PATH_INVALID",
            "'one.png' is not a stage path: stage paths start with '@', e.g. @MY_STAGE/folder/.",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_an_error_of_its_row(
    files: StageFiles, cell: str, code: str, message: str
) -> None:
    with pytest.raises(RowError) as exc:
        files.read(cell)
    assert (exc.value.code, exc.value.message) == (code, message)


def test_a_symbolic_link_cannot_lead_out_of_a_local_stage(
    files: StageFiles, stores: tuple[LocalStorage, LocalStorage]
) -> None:
    internal, _ = stores
    os.symlink(
        internal.full_path("stages/DB/S/OTHER/secret.txt"), internal.full_path(f"{INTERNAL_ROOT}/link.txt")
    )
    with pytest.raises(RowError) as exc:
        files.read("@DB.S.IMGS/link.txt")
    assert exc.value.code == "STAGE_PATH_INVALID"
    assert "symbolic link" in exc.value.message


def test_encodings() -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    b64 = base64.b64encode(png).decode()
    named = StagePath("DB", "S", "ST", "x/cat.jpg")
    unnamed = StagePath("DB", "S", "ST", "x/blob")
    assert encode_file(png, FileEncoding.RAW_BYTES, named) == png
    assert encode_file(png, FileEncoding.BASE64, named) == b64
    assert encode_file(png, FileEncoding.BASE64_DATA_URL, named) == f"data:image/jpeg;base64,{b64}"
    assert encode_file(png, FileEncoding.BASE64_DATA_URL, unnamed) == f"data:image/png;base64,{b64}"
    assert (
        encode_file(b"??", FileEncoding.BASE64_DATA_URL, unnamed)
        == "data:application/octet-stream;base64,Pz8="
    )


class SlowStorage(LocalStorage):
    """A local root whose reads take a while and that counts the reads under way."""

    def __init__(self, root: str, delay: float) -> None:
        super().__init__(root)
        self.delay = delay
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def read_bytes(self, key: str) -> bytes:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            return super().read_bytes(key)
        finally:
            with self._lock:
                self.active -= 1


def _image_stage(tmp_path: Path, n: int, size: int, delay: float) -> tuple[SlowStorage, StageFiles]:
    storage = SlowStorage(str(tmp_path), delay)
    for i in range(n):
        storage.write_bytes(f"st/{i:04d}.bin", bytes([i % 256]) * size)
    return storage, StageFiles({("DB", "S", "ST"): MountedStage(storage, "st")})


def _batches(n: int, per_batch: int) -> list[pa.RecordBatch]:
    return [
        pa.record_batch({"F": [f"@DB.S.ST/{i:04d}.bin" for i in range(lo, min(n, lo + per_batch))]})
        for lo in range(0, n, per_batch)
    ]


def test_a_batch_s_files_are_read_concurrently_and_in_row_order(tmp_path: Path) -> None:
    storage, files = _image_stage(tmp_path, 16, 10, delay=0.05)
    fetcher = FileFetcher(files, {"F": FileEncoding.RAW_BYTES}, threads=8)
    batch = pa.record_batch({"F": [f"@DB.S.ST/{i:04d}.bin" for i in range(16)] + [None, "@DB.S.ST/missing"]})
    started = time.monotonic()
    fetched = fetcher.submit(batch).result()
    elapsed = time.monotonic() - started
    fetcher.close()
    assert fetched.values["F"] == [bytes([i]) * 10 for i in range(16)] + [None, None]
    assert list(fetched.errors) == [17] and fetched.errors[17].code == "FILE_NOT_FOUND"
    assert fetched.nbytes == 160
    assert storage.peak == 8
    assert elapsed < 16 * 0.05 / 2  # about 3 rounds of 8, not 17 reads one after another


def test_one_thread_reads_in_the_caller_s_thread_one_file_at_a_time(tmp_path: Path) -> None:
    storage, files = _image_stage(tmp_path, 4, 10, delay=0.01)
    fetcher = FileFetcher(files, {"F": FileEncoding.BASE64}, threads=1)
    pending = fetcher.submit(_batches(4, 4)[0])
    assert storage.peak == 0  # nothing read before the results are asked for
    assert pending.result().values["F"] == [base64.b64encode(bytes([i]) * 10).decode() for i in range(4)]
    assert storage.peak == 1


@pytest.mark.parametrize(("max_rows", "max_bytes"), [(30, 1 << 30), (1000, 25_000)])
def test_the_prefetcher_reads_ahead_within_its_budget_and_keeps_order(
    tmp_path: Path, max_rows: int, max_bytes: int
) -> None:
    """A slow consumer: the prefetcher runs ahead of it, never past the rows or bytes it may hold."""
    storage, files = _image_stage(tmp_path, 200, 1000, delay=0.002)
    fetcher = FileFetcher(files, {"F": FileEncoding.RAW_BYTES}, threads=4)
    stop = threading.Event()
    prefetcher = Prefetcher(fetcher, max_rows=max_rows, max_bytes=max_bytes, stop=stop)
    out: list[bytes] = []
    admitted: list[int] = []
    queue: list[object] = []
    cond = threading.Condition()

    def produce() -> None:
        for batch in _batches(200, 10):
            pending = prefetcher.admit(batch)
            assert pending is not None
            with cond:
                queue.append(pending)
                admitted.append(prefetcher.rows)
                cond.notify()
        with cond:
            queue.append(None)
            cond.notify()

    producer = threading.Thread(target=produce)
    producer.start()
    while True:
        with cond:
            while not queue:
                cond.wait()
            item = queue.pop(0)
        if item is None:
            break
        time.sleep(0.01)  # the model
        fetched = item.result()  # type: ignore[attr-defined]
        out.extend(fetched.values["F"])
        prefetcher.release(item)  # type: ignore[arg-type]
    producer.join()
    fetcher.close()
    assert out == [bytes([i % 256]) * 1000 for i in range(200)]
    assert prefetcher.rows == 0 and prefetcher.bytes == 0
    if max_rows == 30:
        assert prefetcher.peak_rows == 30  # ran ahead, up to the limit
    else:
        assert prefetcher.peak_bytes <= 25_000
        assert prefetcher.peak_rows == 20  # 1 kB files: two batches are 20 kB, a third would be 30 kB
    assert max(admitted) <= max_rows


def test_a_batch_larger_than_the_budget_still_goes_through(tmp_path: Path) -> None:
    _, files = _image_stage(tmp_path, 50, 100, delay=0.0)
    fetcher = FileFetcher(files, {"F": FileEncoding.RAW_BYTES}, threads=2)
    prefetcher = Prefetcher(fetcher, max_rows=10, max_bytes=10, stop=threading.Event())
    pending = prefetcher.admit(_batches(50, 50)[0])
    assert pending is not None and len(pending.result().values["F"]) == 50
    prefetcher.release(pending)
    fetcher.close()


def test_a_waiting_admission_ends_when_the_shard_stops(tmp_path: Path) -> None:
    _, files = _image_stage(tmp_path, 20, 100, delay=0.0)
    fetcher = FileFetcher(files, {"F": FileEncoding.RAW_BYTES}, threads=2)
    stop = threading.Event()
    prefetcher = Prefetcher(fetcher, max_rows=10, max_bytes=1 << 20, stop=stop)
    first, second = _batches(20, 10)
    assert prefetcher.admit(first) is not None
    threading.Timer(0.2, stop.set).start()
    assert prefetcher.admit(second) is None
    fetcher.close()
