"""Files on stages as model input (InputSpec.column_handling), list_stage_files, and error rows.

Images are generated here (Pillow), uploaded to an internal stage and to an external S3 stage
(moto), named by full stage paths in one input column, and decoded by the model; outputs are
compared with the model (or the transformers pipeline) called directly on the same bytes.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from minio import Minio
from PIL import Image

from runbatch.ml.jobs import MLJob
from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import FileEncoding, InputFormat, InputSpec, JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.ml.utils.stage_file import list_stage_files, list_stage_files_from_directory_tables
from runbatch.snowpark import Session
from tests.e2e.image_models import SIGNATURES, CrashOnceImageStats, ImageStats, image_stats
from tests.hf_models import TinyPipelines, assert_same, shared_pipelines
from tests.services import MotoServer

POOL = "SYSTEM_COMPUTE_POOL_CPU"
CORRUPT = b"garbage!" * 8


def _image(seed: int, size: tuple[int, int], fmt: str) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _handling(encoding: FileEncoding, column: str = "IMAGES") -> InputSpec:
    return InputSpec(
        column_handling={column: {"input_format": InputFormat.FULL_STAGE_PATH, "convert_to": encoding}}
    )


def _upload(session: Session, stage: str, path: str, data: bytes) -> None:
    session._conn.client.upload_stage_file(session._conn.database, "PUBLIC", stage, path, data)


def _download(session: Session, stage: str, path: str) -> bytes:
    chunks = session._conn.client.download_stage_file(session._conn.database, "PUBLIC", stage, path)
    return b"".join(chunks)


def _names(session: Session, location: str) -> list[str]:
    return [r["name"].split("/", 1)[1] for r in session.sql(f"LIST {location}").collect()]


@pytest.fixture
def bucket(moto_server: MotoServer) -> Minio:
    client = Minio(
        f"127.0.0.1:{moto_server.port}",
        access_key=moto_server.access_key,
        secret_key=moto_server.secret_key,
        secure=False,
    )
    name = moto_server.make_bucket()
    client._test_bucket = name  # type: ignore[attr-defined]
    return client


def _external_stage(session: Session, client: Minio, moto_server: MotoServer, folder: str = "pics") -> str:
    name: str = client._test_bucket  # type: ignore[attr-defined]
    session.sql(
        f"CREATE STAGE EXT URL = 's3://{name}/{folder}/' ENDPOINT = '{moto_server.endpoint}' "
        "CREDENTIALS = (AWS_KEY_ID = 'ext-key' AWS_SECRET_KEY = 'ext-secret')"
    ).collect()
    return name


def _put_external(client: Minio, key: str, data: bytes) -> None:
    client.put_object(client._test_bucket, key, io.BytesIO(data), len(data))  # type: ignore[attr-defined]


def _log_image_stats(session: Session) -> ModelVersion:
    return Registry(session).log_model(ImageStats(), model_name="IMAGE_STATS", signatures=SIGNATURES)


def _errors(session: Session, location: str) -> list[dict[str, Any]]:
    frame = session.read.parquet(f"{location}_errors/").to_pandas().sort_values("ID")
    return frame.to_dict(orient="records")  # type: ignore[no-any-return]


def _manifest(session: Session, path: str) -> dict[str, Any]:
    return json.loads(_download(session, "DATA", path))  # type: ignore[no-any-return]


def test_files_on_internal_and_external_stages_in_one_job_with_error_rows(
    session: Session, fresh_db: str, bucket: Minio, moto_server: MotoServer
) -> None:
    """Rows mix an internal and an external stage; a missing file and a corrupt image become error rows."""
    session.sql("CREATE STAGE IMGS").collect()
    _external_stage(session, bucket, moto_server)
    images = {
        f"@{fresh_db}.PUBLIC.IMGS/a/0.png": _image(0, (24, 16), "PNG"),
        f"@{fresh_db}.PUBLIC.IMGS/a/1.jpg": _image(1, (8, 8), "JPEG"),
        "@EXT/cats/2.png": _image(2, (40, 30), "PNG"),
        f"@{fresh_db}.PUBLIC.IMGS/b/3.png": _image(3, (5, 7), "PNG"),
        "@EXT/cats/4.jpg": _image(4, (17, 9), "JPEG"),
        "@EXT/cats/5.png": CORRUPT,
    }
    for path, data in images.items():
        if path.startswith("@EXT/"):
            _put_external(bucket, "pics/" + path[len("@EXT/") :], data)
        else:
            _upload(session, "IMGS", path.split("/", 1)[1], data)
    paths = [*images, "@IMGS/missing.png"]
    frame = session.create_dataframe([(i, p) for i, p in enumerate(paths)], schema=["id", "images"])
    mv = _log_image_stats(session)
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        input_spec=_handling(FileEncoding.RAW_BYTES),
        output_spec=OutputSpec(stage_location="@DATA/mixed/"),
        job_spec=JobSpec(function_name="from_bytes", max_batch_rows=3),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    info = job.info
    assert (info.rows_total, info.rows_done, info.rows_failed) == (7, 7, 2)
    out = session.read.parquet("@DATA/mixed/").to_pandas().sort_values("ID").reset_index(drop=True)
    assert list(out.columns) == ["ID", "IMAGES", "WIDTH", "HEIGHT", "MEAN", "FORMAT"]
    good = [0, 1, 2, 3, 4]
    assert out["ID"].tolist() == good
    assert out["IMAGES"].tolist() == [paths[i] for i in good]
    expected = [image_stats(images[paths[i]]) for i in good]
    assert out[["WIDTH", "HEIGHT", "MEAN", "FORMAT"]].to_dict(orient="records") == expected
    assert _errors(session, "@DATA/mixed/") == [
        {
            "ID": 5,
            "IMAGES": "@EXT/cats/5.png",
            "ERROR_CODE": "MODEL_ERROR",
            "ERROR_MESSAGE": "ValueError: not an image: b'garbage!'",
        },
        {
            "ID": 6,
            "IMAGES": "@IMGS/missing.png",
            "ERROR_CODE": "FILE_NOT_FOUND",
            "ERROR_MESSAGE": f"File @{fresh_db}.PUBLIC.IMGS/missing.png does not exist.",
        },
    ]
    names = _names(session, "@DATA/mixed/")
    assert names[:3] == ["mixed/_SUCCESS", "mixed/_errors/part-00000-00000.parquet", "mixed/_manifest.json"]
    manifest = _manifest(session, "mixed/_manifest.json")
    assert (manifest["rows"], manifest["input_rows"], manifest["failed_rows"]) == (5, 7, 2)
    assert manifest["error_files"] == [
        {
            "path": "_errors/part-00000-00000.parquet",
            "rows": 2,
            "bytes": manifest["error_files"][0]["bytes"],
            "shard": 0,
        }
    ]
    assert "Row failed (FILE_NOT_FOUND)" in job.get_logs()


@pytest.mark.parametrize(
    ("function", "encoding"),
    [
        ("from_bytes", FileEncoding.RAW_BYTES),
        ("from_base64", FileEncoding.BASE64),
        ("from_data_url", FileEncoding.BASE64_DATA_URL),
    ],
)
def test_each_encoding_reaches_the_model_as_documented(
    embedded_session: Session, embedded_db: str, function: str, encoding: FileEncoding
) -> None:
    session = embedded_session
    images = [_image(10 + i, (6 + i, 4 + 2 * i), "PNG" if i % 2 else "JPEG") for i in range(5)]
    for i, data in enumerate(images):
        _upload(session, "DATA", f"img/{i}.{'png' if i % 2 else 'jpeg'}", data)
    files = list_stage_files(session, f"@{embedded_db}.PUBLIC.DATA/img", column_name="IMAGES")
    mv = _log_image_stats(session)
    job = mv.run_batch(
        files,
        compute_pool=POOL,
        input_spec=_handling(encoding),
        output_spec=OutputSpec(stage_location=f"@DATA/{function}/"),
        job_spec=JobSpec(function_name=function),
    )
    assert job.wait(60) == "DONE", job.get_logs()
    out = session.read.parquet(f"@DATA/{function}/").to_pandas().sort_values("IMAGES")
    assert out["IMAGES"].tolist() == [
        f"@{embedded_db}.PUBLIC.DATA/img/{i}.{'png' if i % 2 else 'jpeg'}" for i in range(5)
    ]
    expected = [image_stats(data) for data in images]
    if encoding is FileEncoding.BASE64_DATA_URL:
        for i, row in enumerate(expected):
            row["FORMAT"] = "image/png" if i % 2 else "image/jpeg"
    assert out[["WIDTH", "HEIGHT", "MEAN", "FORMAT"]].to_dict(orient="records") == expected
    local = getattr(ImageStats(), function)(
        pd.DataFrame({"IMAGES": [_encoded(d, encoding, i) for i, d in enumerate(images)]})
    )
    assert local.to_dict(orient="records") == expected


def _encoded(data: bytes, encoding: FileEncoding, i: int) -> Any:
    if encoding is FileEncoding.RAW_BYTES:
        return data
    text = base64.b64encode(data).decode()
    return (
        text if encoding is FileEncoding.BASE64 else f"data:image/{'png' if i % 2 else 'jpeg'};base64,{text}"
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def test_an_image_classification_pipeline_classifies_stage_files_like_the_pipeline(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines, bucket: Minio, moto_server: MotoServer
) -> None:
    session = embedded_session
    _external_stage(session, bucket, moto_server, folder="vit")
    images = [_image(20 + i, (16 + 3 * i, 16 + i), "PNG") for i in range(6)]
    for i, data in enumerate(images):
        if i % 2:
            _put_external(bucket, f"vit/{i}.png", data)
        else:
            _upload(session, "DATA", f"vit/{i}.png", data)
    _upload(session, "DATA", "vit/corrupt.png", CORRUPT)
    internal = list_stage_files(session, "@DATA/vit", pattern=r".*\d\.png").to_pandas()
    external = list_stage_files(session, "@EXT").to_pandas()
    assert external["FILE_PATH"].tolist() == ["@EXT/1.png", "@EXT/3.png", "@EXT/5.png"]
    paths = sorted([*internal["FILE_PATH"], *external["FILE_PATH"]], key=lambda p: p[-5])
    paths.append("@DATA/vit/corrupt.png")
    pipe = tiny.image_classification()
    mv = Registry(session).log_model(pipe, model_name="VIT")
    job = mv.run_batch(
        session.create_dataframe([(i, p) for i, p in enumerate(paths)], schema=["id", "images"]),
        compute_pool=POOL,
        input_spec=InputSpec(
            params={"top_k": 2},
            column_handling={
                "IMAGES": {"input_format": InputFormat.FULL_STAGE_PATH, "convert_to": FileEncoding.RAW_BYTES}
            },
        ),
        output_spec=OutputSpec(stage_location="@DATA/vit_out/"),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/vit_out/").to_pandas().sort_values("ID")
    assert out["IMAGES"].tolist() == paths[:6]
    expected = pipe([Image.open(io.BytesIO(b)) for b in images], top_k=2)
    assert_same([json.loads(v) for v in out["labels"]], expected)
    (error,) = _errors(session, "@DATA/vit_out/")
    assert (error["ID"], error["IMAGES"], error["ERROR_CODE"]) == (6, "@DATA/vit/corrupt.png", "MODEL_ERROR")
    assert error["ERROR_MESSAGE"].startswith("UnidentifiedImageError: cannot identify image file")


def _frame_of(session: Session, paths: list[str]) -> Any:
    return session.create_dataframe([(i, p) for i, p in enumerate(paths)], schema=["id", "images"])


def _three_images(session: Session) -> list[str]:
    session.sql("CREATE STAGE IF NOT EXISTS IMGS").collect()
    for i in range(3):
        _upload(session, "IMGS", f"{i}.png", _image(30 + i, (4, 4), "PNG"))
    return [f"@IMGS/{i}.png" for i in range(3)]


def test_file_inputs_are_checked_before_compute(session: Session, fresh_db: str) -> None:
    mv = _log_image_stats(session)
    paths = _three_images(session)
    bytes_fn = JobSpec(function_name="from_bytes")
    raw = _handling(FileEncoding.RAW_BYTES)

    def refused(where: str, frame: Any, input_spec: InputSpec, job_spec: JobSpec = bytes_fn) -> str:
        with pytest.raises(ValueError) as exc:
            mv.run_batch(
                frame,
                compute_pool=POOL,
                input_spec=input_spec,
                output_spec=OutputSpec(stage_location=f"@DATA/{where}/"),
                job_spec=job_spec,
            )
        return str(exc.value)

    assert refused("c1", _frame_of(session, paths), _handling(FileEncoding.RAW_BYTES, "PICS")) == (
        "column_handling names column(s) ['PICS'] that the input does not have; input columns are ['ID', 'IMAGES']. "
        "Use the resolved column names (unquoted names are upper case, e.g. 'IMAGES')."
    )
    assert refused("c2", _frame_of(session, paths), _handling(FileEncoding.BASE64)) == (
        "Column IMAGES is converted to BASE64 by column_handling, but the signature input IMAGES expects "
        "DataType.BYTES. Use convert_to=FileEncoding.RAW_BYTES."
    )
    # A stage that does not exist: in uploaded input, and in Parquet input read in place from a stage.
    missing = [*paths, "@NOPE/x.png"]
    message = (
        f"Column IMAGES (column_handling) names files on stage '{fresh_db}.PUBLIC.NOPE', which does not exist or "
        "not authorized. Create the stage, or correct the stage paths in the column."
    )
    assert refused("c3", _frame_of(session, missing), raw) == message
    buffer = io.BytesIO()
    pq.write_table(pa.table({"ID": range(4), "IMAGES": missing}), buffer)
    _upload(session, "DATA", "in/part.parquet", buffer.getvalue())
    assert refused("c4", session.read.parquet("@DATA/in/"), raw) == message
    both = JobSpec(function_name="from_bytes", fail_fast=True, max_failed_rows=3)
    assert refused("c5", _frame_of(session, paths), raw, both) == (
        "JobSpec.fail_fast fails the job on its first failed row, so max_failed_rows and max_failed_rows_fraction "
        "have no effect with it. Set fail_fast, or a threshold, not both."
    )
    for where in ("c1", "c2", "c4", "c5"):  # refused at submit: nothing was written
        assert _names(session, f"@DATA/{where}/") == []


def _run(mv: ModelVersion, session: Session, paths: list[str], where: str, **job: Any) -> MLJob[Any]:
    return mv.run_batch(
        _frame_of(session, paths),
        compute_pool=POOL,
        input_spec=_handling(FileEncoding.RAW_BYTES),
        output_spec=OutputSpec(stage_location=f"@DATA/{where}/"),
        job_spec=JobSpec(function_name="from_bytes", **job),
    )


def test_fail_fast_and_thresholds_fail_the_job_without_success(session: Session, fresh_db: str) -> None:
    mv = _log_image_stats(session)
    paths = [*_three_images(session), "@IMGS/gone.png", "@IMGS/3.png", "@IMGS/4.png"]
    missing = f"File @{fresh_db}.PUBLIC.IMGS/gone.png does not exist."
    jobs = {
        "fast": _run(mv, session, paths, "fast", fail_fast=True),
        "count": _run(mv, session, paths, "count", max_failed_rows=2),
        "fraction": _run(mv, session, paths, "fraction", max_failed_rows_fraction=0.4),
        "within": _run(mv, session, paths, "within", max_failed_rows=3, max_failed_rows_fraction=0.5),
        "all": _run(mv, session, ["@IMGS/x.png", "@IMGS/y.png"], "all"),
    }
    outcomes = {name: (job.wait(120), job.info.message) for name, job in jobs.items()}
    assert outcomes == {
        "fast": (
            "FAILED",
            f"Shard 0 failed (attempt 1/2): Inference failed: RowError: FILE_NOT_FOUND: {missing}",
        ),
        "count": (
            "FAILED",
            "Shard 0 failed (attempt 1/2): Inference failed: TooManyFailedRows: 3 input rows failed, more than "
            f"JobSpec.max_failed_rows=2 allows. Last failure: FILE_NOT_FOUND: File @{fresh_db}.PUBLIC.IMGS/4.png "
            "does not exist.",
        ),
        "fraction": (
            "FAILED",
            "3 of 6 input rows failed (50.00%), more than JobSpec.max_failed_rows_fraction=0.4 allows. The job's log "
            "names the first failed rows (job.get_logs()).",
        ),
        "within": ("DONE", ""),
        "all": (
            "FAILED",
            "All 2 input rows failed. The job's log names the first failed rows (job.get_logs()).",
        ),
    }
    for name in ("fast", "count", "fraction", "all"):
        assert _names(session, f"@DATA/{name}/") == [], name  # no _SUCCESS, no output, no _errors
    assert jobs["within"].info.rows_failed == 3
    assert [e["ID"] for e in _errors(session, "@DATA/within/")] == [3, 4, 5]


def test_a_retried_shard_never_duplicates_error_rows(
    embedded_session: Session, embedded_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = embedded_session
    paths = [*_three_images(session), "@IMGS/gone.png", *_three_images(session)]
    monkeypatch.setattr(CrashOnceImageStats, "marker", str(tmp_path / f"crashed-{uuid.uuid4().hex}"))
    mv = Registry(session).log_model(
        CrashOnceImageStats(), model_name="CRASH_ONCE", signatures={"from_bytes": SIGNATURES["from_bytes"]}
    )
    # Batches of 2: the first attempt writes the failed row of batch 2 to its error file, then dies.
    job = _run(mv, session, paths, "retried", max_batch_rows=2)
    assert job.wait(120) == "DONE", job.get_logs()
    shards = session._conn.client.job_shards(embedded_db, "PUBLIC", job.name)
    assert [(s.state, s.attempt, s.rows_failed) for s in shards] == [("DONE", 2, 1)]
    assert "crashing on purpose" in job.get_logs()
    assert [(e["ID"], e["ERROR_CODE"]) for e in _errors(session, "@DATA/retried/")] == [(3, "FILE_NOT_FOUND")]
    assert _manifest(session, "retried/_manifest.json")["failed_rows"] == 1
    assert job.info.rows_failed == 1


def test_list_stage_files_pinned_examples(
    session: Session, fresh_db: str, bucket: Minio, moto_server: MotoServer
) -> None:
    session.sql("CREATE STAGE MY_STAGE").collect()
    for path in ("path/file1.jpg", "path/file2.jpg", "path/nested/file3.jpg", "other/x.txt"):
        _upload(session, "MY_STAGE", path, b"x")
    listed = list_stage_files(session, f"@{fresh_db}.PUBLIC.MY_STAGE/path")
    assert [f.name for f in listed.schema.fields] == ["FILE_PATH"]
    assert [r["FILE_PATH"] for r in listed.collect()] == [
        f"@{fresh_db}.PUBLIC.MY_STAGE/path/file1.jpg",
        f"@{fresh_db}.PUBLIC.MY_STAGE/path/file2.jpg",
        f"@{fresh_db}.PUBLIC.MY_STAGE/path/nested/file3.jpg",
    ]
    without_at = list_stage_files(
        session, f"{fresh_db}.PUBLIC.MY_STAGE/path", pattern=r".*nested.*", column_name="images"
    )
    assert [r["IMAGES"] for r in without_at.collect()] == [
        f"@{fresh_db}.PUBLIC.MY_STAGE/path/nested/file3.jpg"
    ]
    assert list_stage_files(session, "@MY_STAGE/none").collect() == []
    assert list_stage_files(session, "@MY_STAGE/none").columns == ["FILE_PATH"]

    # An external stage lists URLs: s3://my-bucket/subdir/data.parquet -> @DB.SCHEMA.MY_EXT_STAGE/subdir/data.parquet
    name: str = bucket._test_bucket  # type: ignore[attr-defined]
    session.sql(
        f"CREATE STAGE MY_EXT_STAGE URL = 's3://{name}' ENDPOINT = '{moto_server.endpoint}' "
        "CREDENTIALS = (AWS_KEY_ID = 'k' AWS_SECRET_KEY = 's')"
    ).collect()
    _put_external(bucket, "kitty.jpeg", b"x")
    _put_external(bucket, "subdir/data.parquet", b"x")
    assert [
        r["FILE_PATH"] for r in list_stage_files(session, f"@{fresh_db}.PUBLIC.MY_EXT_STAGE").collect()
    ] == [
        f"@{fresh_db}.PUBLIC.MY_EXT_STAGE/kitty.jpeg",
        f"@{fresh_db}.PUBLIC.MY_EXT_STAGE/subdir/data.parquet",
    ]
    # A stage over a folder of the bucket: paths are relative to the stage's own URL.
    session.sql(
        f"CREATE STAGE SUB URL = 's3://{name}/subdir/' ENDPOINT = '{moto_server.endpoint}' "
        "CREDENTIALS = (AWS_KEY_ID = 'k' AWS_SECRET_KEY = 's')"
    ).collect()
    assert [r["FILE_PATH"] for r in list_stage_files(session, "@SUB").collect()] == ["@SUB/data.parquet"]

    assert [
        r["FILE_PATH"] for r in list_stage_files_from_directory_tables(session, "@MY_STAGE").collect()
    ] == [
        "@MY_STAGE/other/x.txt",
        "@MY_STAGE/path/file1.jpg",
        "@MY_STAGE/path/file2.jpg",
        "@MY_STAGE/path/nested/file3.jpg",
    ]
    with pytest.raises(ValueError) as exc:
        list_stage_files_from_directory_tables(session, "@DB.SCHEMA.STAGE/sub")
    assert str(exc.value) == (
        "stage_name must be a bare stage reference like '@DB.SCHEMA.STAGE' without a subpath, got: @DB.SCHEMA.STAGE/sub"
    )
    with pytest.raises(RuntimeError) as failed:
        list_stage_files(session, "@NO_SUCH_STAGE/x")
    assert str(failed.value).startswith("Failed to list stage location '@NO_SUCH_STAGE/x': ")
