"""run_batch end to end through the SDK, embedded and over HTTP against a real `runbatch server`."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from runbatch.ml.jobs import delete_job, get_job, list_jobs
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec, SaveMode
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler

POOL = "SYSTEM_COMPUTE_POOL_CPU"


def _features(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["A", "B", "C", "D"])
    frame.insert(0, "ID", np.arange(rows, dtype=np.int64))
    return frame


@pytest.fixture
def sklearn_version(session: Session, fresh_db: str):  # type: ignore[no-untyped-def]
    data = _features(2_000)
    model = LogisticRegression().fit(data[["A", "B", "C", "D"]], (data.A + data.B > 0).astype(int))
    mv = Registry(session).log_model(
        model, model_name="CLF", sample_input_data=data[["A", "B", "C", "D"]].head(20)
    )
    return model, mv


def _stage_names(session: Session, location: str) -> list[str]:
    return [r["name"].split("/", 1)[1] for r in session.sql(f"LIST {location}").collect()]


def test_run_batch_output_equals_the_model_called_directly(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    model, mv = sklearn_version
    data = _features(5_003, seed=1)
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/out/"),
        job_spec=JobSpec(function_name="predict_proba", replicas=2, max_batch_rows=1_000),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    info = job.info
    assert (info.rows_total, info.rows_done, info.shards_total, info.shards_done) == (5_003, 5_003, 2, 2)
    names = _stage_names(session, "@DATA/out/")
    assert names == [
        "out/_SUCCESS",
        "out/_manifest.json",
        "out/part-00000-00000.parquet",
        "out/part-00001-00000.parquet",
    ]
    out = session.read.option("pattern", ".*\\.parquet").parquet("@DATA/out/").to_pandas()
    assert list(out.columns) == ["ID", "A", "B", "C", "D", "output_feature_0", "output_feature_1"]
    assert len(out) == 5_003
    out = out.sort_values("ID").reset_index(drop=True)
    pd.testing.assert_frame_equal(out[["ID", "A", "B", "C", "D"]], data)
    expected = model.predict_proba(data[["A", "B", "C", "D"]])
    np.testing.assert_allclose(out[["output_feature_0", "output_feature_1"]].to_numpy(), expected, rtol=1e-12)
    manifest = json.loads(
        session.read._session._conn.client.download_stage_file(  # type: ignore[attr-defined]
            session._conn.database, "PUBLIC", "DATA", "out/_manifest.json"
        ).__next__()
    )
    assert manifest["rows"] == 5_003
    assert sum(f["rows"] for f in manifest["files"]) == 5_003


def test_save_mode_error_refuses_and_overwrite_replaces(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    _, mv = sklearn_version
    frame = session.create_dataframe(_features(10))
    spec = JobSpec(function_name="predict")
    first = mv.run_batch(
        frame, compute_pool=POOL, output_spec=OutputSpec(stage_location="@DATA/o/"), job_spec=spec
    )
    assert first.wait(60) == "DONE"
    with pytest.raises(FileExistsError) as exc:
        mv.run_batch(
            frame, compute_pool=POOL, output_spec=OutputSpec(stage_location="@DATA/o/"), job_spec=spec
        )
    assert str(exc.value) == (
        "Output stage location '@DATA/o/' is not empty. Found 3 existing files. When using ERROR mode, the output "
        "location must be empty. Please clear the existing files or use OVERWRITE mode."
    )
    session.file.put(__file__, "@DATA/o/")  # a stray file OVERWRITE must remove
    with pytest.warns(UserWarning, match="OVERWRITE mode will remove all existing files"):
        second = mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/o/", mode=SaveMode.OVERWRITE),
            job_spec=spec,
        )
    assert second.wait(60) == "DONE"
    assert _stage_names(session, "@DATA/o/") == [
        "o/_SUCCESS",
        "o/_manifest.json",
        "o/part-00000-00000.parquet",
    ]


def test_bad_input_fails_before_any_job_starts(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    _, mv = sklearn_version
    frame = session.create_dataframe(_features(5))
    out = OutputSpec(stage_location="@DATA/bad/")
    before = len(list_jobs(limit=0, session=session))
    fqn = mv.fully_qualified_model_name
    with pytest.raises(ValueError) as exc:
        mv.run_batch(frame, compute_pool=POOL, output_spec=out)
    assert str(exc.value) == (
        f"There are more than 1 target methods available in the model {fqn} version {mv.version_name}. "
        "Please specify a `function_name` when calling the `run` method."
    )
    with pytest.raises(ValueError) as exc:
        mv.run_batch(frame, compute_pool=POOL, output_spec=out, job_spec=JobSpec(function_name="nope"))
    assert (
        str(exc.value)
        == f"There is no method with name nope available in the model {fqn} version {mv.version_name}"
    )
    with pytest.raises(ValueError, match=r"Input data is missing column\(s\) \['D'\]"):
        mv.run_batch(
            session.create_dataframe(_features(5).drop(columns=["D"])),
            compute_pool=POOL,
            output_spec=out,
            job_spec=JobSpec(function_name="predict"),
        )
    with pytest.raises(ValueError) as exc:
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=out,
            job_spec=JobSpec(function_name="predict"),
            input_spec=InputSpec(params={"temperature": 1.0}),
        )
    assert str(exc.value) == (
        "(2110) Parameters were provided (['temperature']), but this method does not accept any parameters."
    )
    with pytest.raises(ValueError, match="does not have GPU runtime support"):
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=out,
            job_spec=JobSpec(function_name="predict", gpu_requests="1"),
        )
    with pytest.raises(ValueError, match="Compute pool 'NO_SUCH_POOL' does not exist"):
        mv.run_batch(
            frame, compute_pool="NO_SUCH_POOL", output_spec=out, job_spec=JobSpec(function_name="predict")
        )
    with pytest.raises(ValueError, match="contains '..', which would leave its stage"):
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/../../etc/"),
            job_spec=JobSpec(function_name="predict"),
        )
    with pytest.raises(ValueError, match="mutually exclusive"):
        JobSpec(job_name="A", job_name_prefix="B")
    assert len(list_jobs(limit=0, session=session)) == before
    assert _stage_names(session, "@DATA/bad/") == []


def test_job_names_and_base_stage_location(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    _, mv = sklearn_version
    frame = session.create_dataframe(_features(7))
    default = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(base_stage_location="@DATA/runs/"),
        job_spec=JobSpec(function_name="predict"),
    )
    assert re.fullmatch(r"BATCH_INFERENCE_[0-9A-F]{8}(_[0-9A-F]{4}){3}_[0-9A-F]{12}", default.name)
    assert default.id == f"{session._conn.database}.PUBLIC.{default.name}"
    prefixed = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(base_stage_location="@DATA/runs"),
        job_spec=JobSpec(function_name="predict", job_name_prefix="NIGHTLY"),
    )
    assert prefixed.name.startswith("NIGHTLY_") and len(prefixed.name) == len("NIGHTLY_") + 36
    named = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/named/"),
        job_spec=JobSpec(function_name="predict", job_name="my_job", block=True),
    )
    assert named.name == "MY_JOB" and named.status == "DONE"
    for job in (default, prefixed):
        assert job.wait(60) == "DONE"
        assert f"runs/{job.name}/_SUCCESS" in _stage_names(session, f"@DATA/runs/{job.name}/")
    with pytest.raises(ValueError, match=r"Job .*MY_JOB already exists"):
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/again/"),
            job_spec=JobSpec(function_name="predict", job_name="MY_JOB"),
        )


def test_job_management(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    _, mv = sklearn_version
    job = mv.run_batch(
        session.create_dataframe(_features(30)),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/m/"),
        job_spec=JobSpec(function_name="predict"),
    )
    assert job.status in ("PENDING", "RUNNING", "DONE")
    assert job.wait(60) == "DONE"
    logs = job.get_logs()
    assert "Starting inference." in logs
    assert job.get_logs(as_list=True)[-1] == "Inference finished."
    assert job.get_logs(limit=1, as_list=True) == ["Inference finished."]
    listing = list_jobs(session=session)
    assert list(listing.columns) == [
        "name",
        "status",
        "message",
        "database_name",
        "schema_name",
        "owner",
        "compute_pool",
        "target_instances",
        "created_time",
        "completed_time",
    ]
    row = listing[listing.name == job.name].iloc[0]
    assert (row.status, row.compute_pool, row.target_instances) == ("DONE", POOL, 1)
    same = get_job(job.name, session=session)
    assert (same.id, same.status) == (job.id, "DONE")
    with pytest.raises(RuntimeError, match="doesn't have a result path configured"):
        job.result()
    delete_job(job)
    with pytest.raises(ValueError, match="does not exist or not authorized"):
        job.wait()
    with pytest.raises(ValueError, match="Invalid job ID"):
        get_job("a.b.c.d", session=session)


def test_params_reach_the_model(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(
        Doubler(), model_name="DOUBLER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    functions = mv.show_functions()
    assert [(f["name"], f["target_method"]) for f in functions] == [("PREDICT", "predict")]
    assert [p.name for p in functions[0]["signature"].params] == ["scale"]
    frame = session.create_dataframe([(1.0,), (2.5,)], schema=["x"])
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/p/"),
        input_spec=InputSpec(params={"SCALE": 10}),
    )
    assert job.wait(60) == "DONE"
    out = session.read.parquet("@DATA/p/").to_pandas()
    assert out.to_dict("list") == {"X": [1.0, 2.5], "Y": [20.0, 50.0]}
    with pytest.raises(ValueError) as exc:
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/q/"),
            input_spec=InputSpec(params={"scale": "big"}),
        )
    assert (
        "(2110) Value 'big' (type: str) is not compatible with dtype DataType.DOUBLE. Expected int or float."
        in str(exc.value)
    )


def test_stage_parquet_is_read_in_place(session: Session, sklearn_version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, mv = sklearn_version
    for i in range(3):
        _features(100, seed=i).assign(ID=lambda f, i=i: f.ID + 100 * i).to_parquet(
            tmp_path / f"in{i}.parquet"
        )
    session.file.put(str(tmp_path / "in*.parquet"), "@DATA/input/")
    frame = session.read.option("pattern", ".*in[0-2]\\.parquet").parquet("@DATA/input/")
    assert frame.count() == 300
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/res/"),
        job_spec=JobSpec(function_name="predict", replicas=3),
    )
    assert job.wait(60) == "DONE"
    assert job.info.input_location.endswith("DATA/input/")
    out = session.read.parquet("@DATA/res/").to_pandas().sort_values("ID")
    assert out.ID.tolist() == list(range(300))
    expected = model.predict(out[["A", "B", "C", "D"]])
    assert out.output_feature_0.tolist() == expected.tolist()


def test_overwrite_deletes_nothing_when_the_job_is_refused(
    session: Session, sklearn_version, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    _, mv = sklearn_version
    _features(10).to_parquet(tmp_path / "in.parquet")
    session.file.put(str(tmp_path / "in.parquet"), "@DATA/data/in/")
    overwrite = OutputSpec(stage_location="@DATA/data/", mode=SaveMode.OVERWRITE)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="overlaps the input location"):
        mv.run_batch(
            session.read.parquet("@DATA/data/in/"),
            compute_pool=POOL,
            output_spec=overwrite,
            job_spec=JobSpec(function_name="predict"),
        )
    assert _stage_names(session, "@DATA/data/") == ["data/in/in.parquet"]
    # A refused job (a missing column) leaves an existing output as it was.
    session.file.put(str(tmp_path / "in.parquet"), "@DATA/kept/")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="missing"):
        mv.run_batch(
            _features(10).drop(columns=["A"]),
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/kept/", mode=SaveMode.OVERWRITE),
            job_spec=JobSpec(function_name="predict"),
        )
    assert _stage_names(session, "@DATA/kept/") == ["kept/in.parquet"]


def test_a_pattern_means_the_same_to_read_and_run_batch(session: Session, sklearn_version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, mv = sklearn_version
    for i in range(2):
        _features(7 + i, seed=i).to_parquet(tmp_path / f"in{i}.parquet")
    session.file.put(str(tmp_path / "in*.parquet"), "@DATA/input/")
    # The path from the stage root and the name LIST shows both work; the storage layout never does.
    for pattern, rows in [
        ("input/in0\\.parquet", 7),
        ("data/input/in1\\.parquet", 8),
        ("in0\\.parquet", None),
    ]:
        frame = session.read.option("pattern", pattern).parquet("@DATA/input/")
        if rows is None:
            assert frame.count() == 0
            with pytest.raises(ValueError, match="No Parquet input files found"):
                mv.run_batch(
                    frame,
                    compute_pool=POOL,
                    output_spec=OutputSpec(stage_location="@DATA/p/"),
                    job_spec=JobSpec(function_name="predict"),
                )
            continue
        assert frame.count() == rows
        job = mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location=f"@DATA/p{rows}/"),
            job_spec=JobSpec(function_name="predict"),
        )
        assert job.wait(60) == "DONE"
        assert job.info.rows_total == rows


def test_uploaded_columns_keep_their_exact_types(session: Session, sklearn_version) -> None:  # type: ignore[no-untyped-def]
    model, mv = sklearn_version
    data = _features(6)
    # Types a text round trip of the schema used to lose or refuse; they pass through untouched.
    data["WHEN"] = pd.date_range("2026-01-01", periods=6, freq="h", tz="Europe/Paris")
    data["KIND"] = pd.Categorical(["a", "b", "a", "c", "b", "a"])
    data["META"] = [{"k": i} for i in range(6)]
    job = mv.run_batch(
        data,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/typed/"),
        job_spec=JobSpec(function_name="predict"),
    )
    assert job.wait(60) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/typed/").to_pandas().sort_values("ID").reset_index(drop=True)
    assert out.WHEN.tolist() == data.WHEN.tolist()
    assert str(out.WHEN.dtype) == "datetime64[us, Europe/Paris]"
    assert out.KIND.astype(str).tolist() == ["a", "b", "a", "c", "b", "a"]
    assert out.META.tolist() == [{"k": i} for i in range(6)]
    assert out.output_feature_0.tolist() == model.predict(data[["A", "B", "C", "D"]]).tolist()
