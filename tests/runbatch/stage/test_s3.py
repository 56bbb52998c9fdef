"""The S3 backend against a real S3 endpoint (moto's server)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import NotFoundError
from runbatch.stage.storage import Storage, StorageConfig, open_storage
from tests.services import MotoServer


@pytest.fixture
def s3(moto_server: MotoServer) -> Storage:
    config = StorageConfig(
        url=f"s3://{moto_server.make_bucket()}/root/dir",
        endpoint_url=moto_server.endpoint,
        access_key=moto_server.access_key,
        secret_key=moto_server.secret_key,  # type: ignore[arg-type]
    )
    return open_storage(config)


def test_files_round_trip(s3: Storage) -> None:
    s3.write_bytes("a/b/one.txt", b"1")
    s3.write_stream("a/two.txt", iter([b"2", b"2"]))
    s3.write_bytes("ab.txt", b"3")
    assert [e.key for e in s3.list("a/")] == ["a/b/one.txt", "a/two.txt"]
    assert [e.key for e in s3.list("a")] == ["a/b/one.txt", "a/two.txt", "ab.txt"]
    assert s3.md5(s3.list("ab.txt")[0]) == "eccbc87e4b5ce2fe28308fd9f2a7baf3"
    s3.move("a/two.txt", "c/two.txt")
    assert s3.read_bytes("c/two.txt") == b"22" and not s3.exists("a/two.txt")
    assert s3.delete_prefix("a/") == 1
    s3.delete_tree("c")
    assert [e.key for e in s3.list("")] == ["ab.txt"]
    with pytest.raises(NotFoundError):
        s3.read_bytes("nope")


def test_parquet_streams_both_ways(s3: Storage) -> None:
    table = pa.table({"x": list(range(100_000)), "y": [float(i) for i in range(100_000)]})
    with s3.open_output_stream("data/t.parquet") as sink:
        pq.write_table(table, sink, row_group_size=10_000)
    with s3.open_input_file("data/t.parquet") as f:
        parquet = pq.ParquetFile(f)
        assert parquet.metadata.num_rows == 100_000 and parquet.num_row_groups == 10
        assert parquet.read_row_group(3).column("x").to_pylist()[:2] == [30_000, 30_001]


def test_local_path_downloads_a_folder_once(s3: Storage, tmp_path: Path) -> None:
    s3.write_bytes("model/v1/a.yaml", b"a")
    s3.write_bytes("model/v1/sub/b.bin", b"b")
    first = s3.local_path("model/v1", tmp_path)
    assert (first / "a.yaml").read_bytes() == b"a" and (first / "sub" / "b.bin").read_bytes() == b"b"
    s3.delete_tree("model")  # a second call must not need the remote copy any more
    assert s3.local_path("model/v1", tmp_path) == first


def test_secrets_stay_hidden_unless_revealed(s3: Storage) -> None:
    dumped = s3.config.model_dump(mode="json")
    assert dumped["secret_key"] == "**********"
    assert s3.config.model_dump(mode="json", context={"secrets": "reveal"})["secret_key"] == "testing-secret"
    assert "testing-secret" not in repr(s3.config)
