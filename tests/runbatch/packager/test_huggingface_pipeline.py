"""The huggingface_pipeline handler: Snowflake's signatures per task, save/load, and inference per task."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from runbatch.inference import LoadedModel
from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    BaseParamSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamGroupSpec,
)
from runbatch.ml.model._signatures.validate import resolve_params
from runbatch.ml.model.openai_signatures import (
    OPENAI_CHAT_SIGNATURE,
    OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING,
    OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC,
)
from runbatch.packager import load_model, save_model
from runbatch.packager.handlers.huggingface_signatures import (
    GENERATION_PARAM_SPECS,
    huggingface_pipeline_signature_auto_infer,
)
from tests.hf_models import TinyPipelines, assert_same, png_bytes, shared_pipelines, wav_bytes

# transformers' question-answering postprocessing calls np.array(copy=False) on a tokenizers encoding.
QA_NUMPY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def _spec(s: BaseFeatureSpec) -> str:
    shape = str(s.shape) if s.shape else ""
    if isinstance(s, FeatureGroupSpec):
        return f"{s.name}{shape}{{{', '.join(_spec(c) for c in s.specs)}}}"
    assert isinstance(s, FeatureSpec)
    return f"{s.name}:{s.dtype.name}{shape}"


def _param(p: BaseParamSpec) -> str:
    if isinstance(p, ParamGroupSpec):
        return f"{p.name}{{{', '.join(_param(c) for c in p.specs)}}}"
    shape = str(p.shape) if p.shape else ""
    return f"{p.name}:{p.dtype.name}{shape}={p.default_value!r}"  # type: ignore[attr-defined]


def _flat(sig: ModelSignature) -> tuple[list[str], list[str], list[str]]:
    return [_spec(s) for s in sig.inputs], [_spec(s) for s in sig.outputs], [_param(p) for p in sig.params]


GENERATION = [
    "max_length:INT64=None",
    "max_new_tokens:INT64=None",
    "min_length:INT64=None",
    "min_new_tokens:INT64=None",
    "early_stopping:STRING=None",
    "max_time:DOUBLE=None",
    "stop_strings:STRING(-1,)=None",
    "do_sample:BOOL=None",
    "num_beams:INT64=None",
    "num_beam_groups:INT64=None",
    "penalty_alpha:DOUBLE=None",
    "temperature:DOUBLE=None",
    "top_k:INT64=None",
    "top_p:DOUBLE=None",
    "min_p:DOUBLE=None",
    "top_h:DOUBLE=None",
    "typical_p:DOUBLE=None",
    "epsilon_cutoff:DOUBLE=None",
    "eta_cutoff:DOUBLE=None",
    "diversity_penalty:DOUBLE=None",
    "repetition_penalty:DOUBLE=None",
    "encoder_repetition_penalty:DOUBLE=None",
    "length_penalty:DOUBLE=None",
    "no_repeat_ngram_size:INT64=None",
    "bad_words_ids:INT64(-1, -1)=None",
    "force_words_ids:INT64(-1, -1)=None",
    "renormalize_logits:BOOL=None",
    "forced_bos_token_id:INT64=None",
    "forced_eos_token_id:INT64=None",
    "remove_invalid_values:BOOL=None",
    "token_healing:BOOL=None",
    "num_return_sequences:INT64=None",
    "output_attentions:BOOL=None",
    "output_hidden_states:BOOL=None",
    "output_scores:BOOL=None",
    "output_logits:BOOL=None",
    "pad_token_id:INT64=None",
    "bos_token_id:INT64=None",
    "eos_token_id:INT64=None",
    "encoder_no_repeat_ngram_size:INT64=None",
    "decoder_start_token_id:INT64=None",
    "is_assistant:BOOL=None",
    "num_assistant_tokens:INT64=None",
    "num_assistant_tokens_schedule:STRING=None",
    "assistant_confidence_threshold:DOUBLE=None",
    "prompt_lookup_num_tokens:INT64=None",
    "max_matching_ngram_size:INT64=None",
    "assistant_early_exit:INT64=None",
    "assistant_lookbehind:INT64=None",
    "target_lookbehind:INT64=None",
    "guidance_scale:DOUBLE=None",
    "low_memory:BOOL=None",
    "disable_compile:BOOL=None",
    "prefill_chunk_size:INT64=None",
    "suppress_tokens:INT64(-1,)=None",
    "begin_suppress_tokens:INT64(-1,)=None",
    "forced_decoder_ids:INT64(-1, -1)=None",
    "use_cache:BOOL=None",
    "cache_implementation:STRING=None",
    "watermarking_config{greenlist_ratio:DOUBLE=None, bias:DOUBLE=None, hashing_key:INT64=None, "
    "seeding_scheme:STRING=None, context_width:INT64=None}",
]
QA_PARAMS = [
    "top_k:INT64=1",
    "doc_stride:INT64=128",
    "max_answer_len:INT64=15",
    "max_seq_len:INT64=384",
    "max_question_len:INT64=64",
    "handle_impossible_answer:BOOL=False",
    "align_to_words:BOOL=True",
]
LABELS = "labels(-1,){label:STRING, score:DOUBLE}"
TABLE: list[tuple[str, dict[str, Any], list[str], list[str], list[str]]] = [
    (
        "fill-mask",
        {},
        ["inputs:STRING"],
        ["outputs(-1,){sequence:STRING, score:DOUBLE, token:INT64, token_str:STRING}"],
        ["targets:STRING(-1,)=None", "top_k:INT64=None"],
    ),
    (
        "ner",
        {},
        ["inputs:STRING"],
        ["outputs(-1,){word:STRING, score:DOUBLE, entity:STRING, index:INT64, start:INT64, end:INT64}"],
        [],
    ),
    (
        "question-answering",
        {},
        ["question:STRING", "context:STRING"],
        ["score:DOUBLE", "start:INT64", "end:INT64", "answer:STRING"],
        QA_PARAMS,
    ),
    (
        "question-answering",
        {"top_k": 3},
        ["question:STRING", "context:STRING"],
        ["answers(-1,){score:DOUBLE, start:INT64, end:INT64, answer:STRING}"],
        QA_PARAMS,
    ),
    (
        "summarization",
        {},
        ["documents:STRING"],
        ["summary_text:STRING"],
        ["clean_up_tokenization_spaces:BOOL=None", "truncation:STRING=None", *GENERATION],
    ),
    (
        "table-question-answering",
        {},
        ["query:STRING", "table:STRING"],
        ["answer:STRING", "coordinates:INT64(-1, 2)", "cells:STRING(-1,)", "aggregator:STRING"],
        ["sequential:BOOL=False", "padding:STRING=None", "truncation:STRING=None"],
    ),
    (
        "text-classification",
        {},
        ["text:STRING"],
        ["label:STRING", "score:DOUBLE"],
        ["top_k:INT64=1", "function_to_apply:STRING=None"],
    ),
    (
        "sentiment-analysis",
        {"top_k": 2},
        ["text:STRING"],
        [LABELS],
        ["top_k:INT64=1", "function_to_apply:STRING=None"],
    ),
    (
        "image-classification",
        {},
        ["images:BYTES"],
        [LABELS],
        ["top_k:INT64=5", "function_to_apply:STRING=None", "timeout:DOUBLE=None"],
    ),
    (
        "automatic-speech-recognition",
        {},
        ["audio:BYTES"],
        ["outputs{text:STRING, chunks(-1,){timestamp:DOUBLE(2,), text:STRING}}"],
        ["return_timestamps:STRING=None", *GENERATION],
    ),
    ("text-generation", {}, ["inputs:STRING"], ["outputs(-1,){generated_text:STRING}"], GENERATION),
    (
        "text2text-generation",
        {},
        ["inputs:STRING"],
        ["generated_text:STRING"],
        ["clean_up_tokenization_spaces:BOOL=None", "truncation:STRING=None", *GENERATION],
    ),
    (
        "translation_en_to_de",
        {},
        ["inputs:STRING"],
        ["translation_text:STRING"],
        ["src_lang:STRING=None", "tgt_lang:STRING=None", *GENERATION],
    ),
    (
        "zero-shot-classification",
        {},
        ["sequences:STRING", "candidate_labels:STRING(-1,)"],
        ["sequence:STRING", "labels:STRING(-1,)", "scores:DOUBLE(-1,)"],
        ["hypothesis_template:STRING='This example is {}.'", "multi_label:BOOL=False"],
    ),
    (
        "audio-classification",
        {},
        ["audio:BYTES"],
        [LABELS],
        ["top_k:INT64=None", "function_to_apply:STRING='softmax'"],
    ),
    (
        "zero-shot-image-classification",
        {},
        ["images:BYTES", "candidate_labels:STRING(-1,)"],
        [LABELS],
        ["hypothesis_template:STRING='This is a photo of {}.'", "timeout:DOUBLE=None"],
    ),
]


@pytest.mark.parametrize(("task", "params", "inputs", "outputs", "param_specs"), TABLE)
def test_auto_signature_per_task_is_snowflakes(
    task: str, params: dict[str, Any], inputs: list[str], outputs: list[str], param_specs: list[str]
) -> None:
    sig = huggingface_pipeline_signature_auto_infer(task, params=params, has_chat_template=False)
    assert sig is not None
    assert _flat(sig) == (inputs, outputs, param_specs)


def test_chat_signatures_are_openais() -> None:
    content = (
        "content(-1,){type:STRING, text:STRING, image_url{url:STRING, detail:STRING}, video_url{url:STRING}, "
        "input_audio{data:STRING, format:STRING}}"
    )
    messages = f"messages(-1,){{{content}, name:STRING, role:STRING, title:STRING}}"
    outputs = [
        "id:STRING",
        "object:STRING",
        "created:FLOAT",
        "model:STRING",
        "choices(-1,){index:INT32, message{content:STRING, name:STRING, role:STRING}, logprobs:STRING, "
        "finish_reason:STRING}",
        "usage{completion_tokens:INT32, prompt_tokens:INT32, total_tokens:INT32}",
    ]
    params = [
        "temperature:DOUBLE=1.0",
        "max_completion_tokens:INT64=250",
        "stop:STRING(-1,)=[]",
        "n:INT32=1",
        "stream:BOOL=False",
        "top_p:DOUBLE=1.0",
        "frequency_penalty:DOUBLE=0.0",
        "presence_penalty:DOUBLE=0.0",
        "response_format{type:STRING='json_schema', json_schema{name:STRING='', description:STRING=None, "
        "schema:OBJECT=None, strict:BOOL=None}}",
    ]
    for task in ("text-generation", "image-text-to-text", "video-text-to-text", "audio-text-to-text"):
        sig = huggingface_pipeline_signature_auto_infer(task, params={}, has_chat_template=True)
        assert sig == OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
    assert _flat(OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC) == ([messages], outputs, params)
    knobs = [
        "temperature:DOUBLE",
        "max_completion_tokens:INT64",
        "stop:STRING(-1,)",
        "n:INT32",
        "stream:BOOL",
        "top_p:DOUBLE",
        "frequency_penalty:DOUBLE",
        "presence_penalty:DOUBLE",
        "response_format{type:STRING, json_schema{name:STRING, description:STRING, schema:OBJECT, strict:BOOL}}",
    ]
    assert _flat(OPENAI_CHAT_SIGNATURE["__call__"]) == ([messages, *knobs], outputs, [])
    plain = "messages(-1,){content:STRING, name:STRING, role:STRING, title:STRING}"
    assert _flat(OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING) == ([plain, *knobs], outputs, [])
    assert [_param(p) for p in GENERATION_PARAM_SPECS] == GENERATION


def test_tasks_without_auto_signature_and_return_tensors() -> None:
    for task in ("feature-extraction", "conversational", "text-to-audio"):
        assert huggingface_pipeline_signature_auto_infer(task, params={}) is None
    for task in (
        "summarization",
        "text-generation",
        "text2text-generation",
        "translation",
        "image-text-to-text",
    ):
        with pytest.raises(NotImplementedError) as exc:
            huggingface_pipeline_signature_auto_infer(task, params={"return_tensors": True})
        assert str(exc.value) == (
            f"Auto deployment for HuggingFace pipeline {task} when `return_tensors` set to `True` has not been "
            "supported yet."
        )
    assert huggingface_pipeline_signature_auto_infer("fill-mask", params={"return_tensors": True}) is not None


# -- save, load, infer --------------------------------------------------------------------------------


def _serve(pipe: Any, tmp_path: Path, **save_kwargs: Any) -> tuple[Any, Any]:
    """Saves ``pipe``, loads it back, and returns (the loaded pipeline, its __call__ function)."""
    save_model(pipe, tmp_path, name="HF", **save_kwargs)
    loaded = LoadedModel.from_dir(tmp_path)
    return loaded.model, loaded.function("__call__")


def _run(fn: Any, df: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return fn(df, resolve_params(params, fn.signature.params))  # type: ignore[no-any-return]


def test_save_layout_blob_options_and_requirements(tiny: TinyPipelines, tmp_path: Path) -> None:
    import transformers

    pipe = tiny.text_classification(top_k=2)
    meta = save_model(pipe, tmp_path, name="CLS")
    blob = tmp_path / "model" / "models" / "CLS" / "model"
    assert {"config.json", "model.safetensors", "pipeline_config.pt", "tokenizer.json", "vocab.txt"} <= {
        p.name for p in blob.iterdir()
    }
    model_yaml = yaml.safe_load((tmp_path / "model" / "model.yaml").read_text())
    options = model_yaml["models"]["CLS"]["options"]
    assert options == {
        "task": "text-classification",
        "batch_size": 1,
        "model": pipe.model.name_or_path,
        "has_tokenizer": True,
        "has_feature_extractor": False,
        "has_image_preprocessor": False,
        "has_processor": False,
        "is_repo_downloaded": False,
    }
    assert model_yaml["models"]["CLS"]["path"] == "model"
    assert model_yaml["model_type"] == "huggingface_pipeline"
    assert list(meta.signatures) == ["__call__"]
    assert [n.split("==")[0] for n in meta.pip_requirements] == ["tokenizers", "torch", "transformers"]
    assert f"transformers=={transformers.__version__}" in meta.pip_requirements
    assert "+" not in "".join(meta.pip_requirements)
    assert meta.cuda_version == "12.4"
    manifest = yaml.safe_load((tmp_path / "MANIFEST.yml").read_text())
    assert [m["name"] for m in manifest["methods"]] == ["__CALL__"]
    loaded, _ = load_model(tmp_path)
    assert isinstance(loaded, transformers.TextClassificationPipeline)
    assert loaded.task == "text-classification"
    assert loaded._postprocess_params == pipe._postprocess_params == {"top_k": 2, "_legacy": False}
    assert loaded.device.type == "cpu"
    texts = ["i love this product", "the food was terrible"]
    assert_same(loaded(texts), pipe(texts))


def test_pipeline_settings_survive_save_and_load(tiny: TinyPipelines, tmp_path: Path) -> None:
    pipe = tiny.text_generation()
    # The pipeline's own generation settings (its default is to sample) are part of the model.
    assert (pipe.generation_config.max_new_tokens, pipe.generation_config.do_sample) == (6, False)
    loaded, fn = _serve(pipe, tmp_path)
    assert (loaded.generation_config.max_new_tokens, loaded.generation_config.do_sample) == (6, False)
    prompts = ["once upon a time", "hello how are you"]
    out = _run(fn, pd.DataFrame({"inputs": prompts}))
    assert list(out.columns) == ["outputs"]
    assert_same(out["outputs"].tolist(), pipe(prompts))
    longer = _run(fn, pd.DataFrame({"inputs": prompts}), {"max_new_tokens": 2, "do_sample": False})
    assert_same(longer["outputs"].tolist(), pipe(prompts, max_new_tokens=2, do_sample=False))


def test_save_errors_and_warnings(tiny: TinyPipelines, tmp_path: Path) -> None:
    features = tiny.feature_extraction()
    with pytest.raises(NotImplementedError) as exc:
        save_model(features, tmp_path / "a", name="F")
    assert str(exc.value) == "Cannot auto infer the signature of pipeline for task feature-extraction"
    pipe = tiny.text_classification()
    with pytest.raises(
        NotImplementedError, match=r"^Explainability is not supported for huggingface model\.$"
    ):
        save_model(pipe, tmp_path / "b", name="C", options={"enable_explainability": True})
    sig = huggingface_pipeline_signature_auto_infer("text-classification", params={})
    assert sig is not None
    with pytest.raises(ValueError, match="Target method another_predict is not callable"):
        save_model(pipe, tmp_path / "c", name="C", signatures={"__call__": sig, "another_predict": sig})
    with pytest.warns(UserWarning) as warned:
        meta = save_model(pipe, tmp_path / "d", name="C", sample_input_data=pd.DataFrame({"text": ["hi"]}))
    assert [str(w.message) for w in warned] == [
        "Inferring model signature from sample input for hugggingface pipeline is not supported. Model signature "
        "will automatically be inferred from pipeline task. Or, you could specify model signature manually."
    ]
    assert meta.signatures["__call__"] == sig
    tensors = tiny.text2text_generation()
    saved = dict(tensors._postprocess_params)
    tensors._postprocess_params.update(tensors._sanitize_parameters(return_tensors=True)[2])
    try:
        with pytest.raises(NotImplementedError, match="when `return_tensors` set to `True`"):
            save_model(tensors, tmp_path / "e", name="T")
    finally:
        tensors._postprocess_params = saved


def test_feature_extraction_with_explicit_signature(tiny: TinyPipelines, tmp_path: Path) -> None:
    pipe = tiny.feature_extraction()
    sig = ModelSignature(
        inputs=[FeatureSpec("text", DataType.STRING)],
        outputs=[FeatureSpec("embeddings", DataType.DOUBLE, shape=(-1, -1))],
    )
    _, fn = _serve(pipe, tmp_path, signatures={"__call__": sig})
    texts = ["hello world", "the cat sat on the mat"]
    out = _run(fn, pd.DataFrame({"text": texts}))
    assert list(out.columns) == ["embeddings"]
    # Snowflake takes each row's single [tokens x hidden] matrix as the one output column.
    assert_same(out["embeddings"].tolist(), [r[0] for r in pipe(texts)])
    arrays = dict(fn.output_arrays(out))
    assert str(arrays["embeddings"].type) == "list<item: list<item: double>>"


@pytest.mark.filterwarnings(QA_NUMPY_WARNING)
def test_question_answering_single_and_top_k(tiny: TinyPipelines, tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "question": ["who works at acme", "what sat"],
            "context": ["alice works at acme", "the cat sat on the mat"],
        }
    )
    pipe = tiny.question_answering()
    _, fn = _serve(pipe, tmp_path / "one")
    out = _run(fn, df)
    assert list(out.columns) == ["score", "start", "end", "answer"]
    expected = pipe(question=df.question.tolist(), context=df.context.tolist())
    assert_same(out.to_dict(orient="records"), expected)
    assert out.dtypes.tolist() == [np.float64, np.int64, np.int64, object]
    single = _run(fn, df.head(1))
    assert_same(single.to_dict(orient="records"), [expected[0]])
    top2 = tiny.question_answering(top_k=2)
    _, fn2 = _serve(top2, tmp_path / "two")
    assert [f.name for f in fn2.signature.outputs] == ["answers"]
    # As in Snowflake the signature's top_k default (1) is passed; asking for 2 gives the pipeline's own answers.
    out2 = _run(fn2, df, {"top_k": 2})
    assert_same(out2["answers"].tolist(), top2(question=df.question.tolist(), context=df.context.tolist()))
    one_each = _run(fn2, df.head(1))
    assert_same(one_each["answers"].tolist(), [[expected[0]]])
    assert (
        json.loads(fn2.output_arrays(out2)[0][1][0].as_py())[0]["answer"] == out2["answers"][0][0]["answer"]
    )


def test_text_classification_single_and_grouped(tiny: TinyPipelines, tmp_path: Path) -> None:
    texts = ["i love this product", "the food was terrible", "paris is the capital"]
    pipe = tiny.text_classification()
    _, fn = _serve(pipe, tmp_path / "one")
    out = _run(fn, pd.DataFrame({"text": texts}))
    assert list(out.columns) == ["label", "score"]
    assert_same(out.to_dict(orient="records"), pipe(texts))
    grouped = tiny.text_classification(top_k=2)
    _, fn2 = _serve(grouped, tmp_path / "two")
    out2 = _run(fn2, pd.DataFrame({"text": texts}), {"top_k": 2})
    assert list(out2.columns) == ["labels"]
    assert_same(out2["labels"].tolist(), grouped(texts))
    single = _run(fn2, pd.DataFrame({"text": texts[:1]}), {"top_k": 3, "function_to_apply": "sigmoid"})
    assert_same(single["labels"].tolist(), grouped(texts[:1], top_k=3, function_to_apply="sigmoid"))


def test_fill_mask_token_classification_and_zero_shot(tiny: TinyPipelines, tmp_path: Path) -> None:
    fill = tiny.fill_mask()
    _, fn = _serve(fill, tmp_path / "fill")
    masked = ["paris is the [MASK] of france", "the [MASK] sat on the mat"]
    out = _run(fn, pd.DataFrame({"inputs": masked}))
    assert list(out.columns) == ["outputs"]
    assert_same(out["outputs"].tolist(), fill(masked))
    one = _run(fn, pd.DataFrame({"inputs": masked[:1]}), {"top_k": 2, "targets": ["capital", "cat"]})
    assert_same(one["outputs"].tolist(), [fill(masked[:1], top_k=2, targets=["capital", "cat"])])

    ner = tiny.token_classification()
    _, fn = _serve(ner, tmp_path / "ner")
    sentences = ["alice works at acme in london", "bob lives in new york"]
    out = _run(fn, pd.DataFrame({"inputs": sentences}))
    assert list(out.columns) == ["outputs"]
    expected = ner(sentences)
    assert_same(out["outputs"].tolist(), expected)
    assert isinstance(out["outputs"][0][0]["score"], float)

    zero_shot = tiny.zero_shot_classification()
    _, fn = _serve(zero_shot, tmp_path / "zs")
    df = pd.DataFrame(
        {
            "sequences": ["i love cooking pasta", "the match was great"],
            "candidate_labels": [["sports", "cooking"], ["sports", "politics", "cooking"]],
        }
    )
    out = _run(fn, df, {"multi_label": True})
    assert list(out.columns) == ["sequence", "labels", "scores"]
    expected = [
        zero_shot(s, candidate_labels=c, multi_label=True)
        for s, c in zip(df.sequences, df.candidate_labels, strict=True)
    ]
    assert_same(out.to_dict(orient="records"), expected)
    # Arrow hands list columns over as numpy arrays.
    arrays = pd.DataFrame(
        {"sequences": df.sequences, "candidate_labels": [np.array(c) for c in df.candidate_labels]}
    )
    assert_same(_run(fn, arrays, {"multi_label": True}).to_dict(orient="records"), expected)


def test_generation_tasks(tiny: TinyPipelines, tmp_path: Path) -> None:
    docs = ["summarize the long document about trains and boats", "hello world good morning"]
    for name, column, output in (
        ("summarization", "documents", "summary_text"),
        ("text2text_generation", "inputs", "generated_text"),
        ("translation", "inputs", "translation_text"),
    ):
        pipe = getattr(tiny, name)()
        _, fn = _serve(pipe, tmp_path / name)
        out = _run(fn, pd.DataFrame({column: docs}), {"num_beams": 2, "do_sample": False})
        assert list(out.columns) == [output]
        assert out[output].tolist() == [r[output] for r in pipe(docs, num_beams=2, do_sample=False)]
        assert _run(fn, pd.DataFrame({column: docs[:1]}))[output].tolist() == [pipe(docs[:1])[0][output]]


def _tapas_on_pandas_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers 4's TAPAS tokenizer indexes rows by position with ``row[i]``, which pandas 3 reads as a label."""
    from transformers.models.tapas import tokenization_tapas as tapas

    def column_values(table: pd.DataFrame, col_index: int) -> dict[Any, list[Any]]:
        return {
            i: list(tapas._get_numeric_values(tapas.normalize_for_match(row.iloc[col_index].text)))
            for i, row in table.iterrows()
        }

    def numeric_values(self: Any, table: pd.DataFrame, col_index: int) -> dict[Any, Any]:
        cells = ((i, row.iloc[col_index]) for i, row in table.iterrows())
        return {i: cell.numeric_value for i, cell in cells if cell.numeric_value is not None}

    monkeypatch.setattr(tapas, "_get_column_values", column_values)
    monkeypatch.setattr(tapas.TapasTokenizer, "_get_column_values", numeric_values)


def test_table_question_answering(
    tiny: TinyPipelines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if int(pd.__version__.split(".")[0]) >= 3:
        _tapas_on_pandas_3(monkeypatch)
    pipe = tiny.table_question_answering()
    _, fn = _serve(pipe, tmp_path)
    table = {"Repository": ["transformers", "datasets", "tokenizers"], "Stars": ["36542", "4512", "3934"]}
    df = pd.DataFrame(
        {"query": ["how many stars does transformers have", "which repository"], "table": json.dumps(table)}
    )
    out = _run(fn, df)
    assert list(out.columns) == ["answer", "coordinates", "cells", "aggregator"]
    frame = pd.DataFrame(table, dtype=object)
    expected = pipe([{"query": q, "table": frame} for q in df["query"]])
    assert_same(out.to_dict(orient="records"), expected)
    # As written to Parquet: [[row, column], ...] in a list<list<int64>> column.
    arrays = dict(fn.output_arrays(out))
    assert arrays["coordinates"].type == pa.list_(pa.list_(pa.int64()))
    assert arrays["coordinates"].to_pylist() == [[list(c) for c in e["coordinates"]] for e in expected]


def test_image_classification_from_bytes(tiny: TinyPipelines, tmp_path: Path) -> None:
    from PIL import Image

    pipe = tiny.image_classification()
    _, fn = _serve(pipe, tmp_path)
    images = [png_bytes(0), png_bytes(1, size=40)]
    out = _run(fn, pd.DataFrame({"images": images}))
    assert list(out.columns) == ["labels"]
    assert_same(out["labels"].tolist(), pipe([Image.open(io.BytesIO(b)) for b in images]))
    top1 = _run(fn, pd.DataFrame({"images": images[:1]}), {"top_k": 1})
    assert_same(top1["labels"].tolist(), [pipe(Image.open(io.BytesIO(images[0])), top_k=1)])


def test_speech_recognition_from_bytes(tiny: TinyPipelines, tmp_path: Path) -> None:
    import soundfile

    pipe = tiny.speech_recognition()
    _, fn = _serve(pipe, tmp_path)
    clips = [wav_bytes(0), wav_bytes(1, seconds=0.3, channels=2)]
    out = _run(fn, pd.DataFrame({"audio": clips}))
    assert list(out.columns) == ["outputs"]
    expected = []
    for clip in clips:
        samples, rate = soundfile.read(io.BytesIO(clip), dtype="float32", always_2d=True)
        expected.append(pipe({"raw": samples.mean(axis=1, dtype=np.float32), "sampling_rate": rate}))
    assert_same(out["outputs"].tolist(), expected)
    assert list(expected[0]) == ["text"]


def _chat_messages() -> list[list[dict[str, Any]]]:
    return [
        [{"role": "user", "content": "hello how are you"}],
        [
            {"role": "system", "content": [{"type": "text", "text": "you are a helpful bot"}]},
            {"role": "user", "content": "complete the sentence once upon a time"},
        ],
    ]


def _expected_chat(pipe: Any, messages: list[dict[str, Any]], tokens: int) -> tuple[str, int]:
    """The assistant's reply and prompt length when the pipeline itself answers, greedily."""
    turns = [
        {
            "role": m["role"],
            "content": m["content"] if isinstance(m["content"], str) else m["content"][0]["text"],
        }
        for m in messages
    ]
    reply = pipe(turns, max_new_tokens=tokens, do_sample=False)[0]["generated_text"][-1]["content"]
    return reply, len(pipe.tokenizer.apply_chat_template(turns, add_generation_prompt=True))


def test_chat_completions_with_params(tiny: TinyPipelines, tmp_path: Path) -> None:
    pipe = tiny.chat()
    loaded, fn = _serve(pipe, tmp_path)
    assert fn.signature == OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
    conversations = _chat_messages()
    out = _run(
        fn, pd.DataFrame({"messages": conversations}), {"temperature": 0.0, "max_completion_tokens": 4}
    )
    assert list(out.columns) == ["id", "object", "created", "model", "choices", "usage"]
    for row, messages in zip(out.to_dict(orient="records"), conversations, strict=True):
        reply, prompt_tokens = _expected_chat(pipe, messages, 4)
        assert row["id"].startswith("chatcmpl-") and len(row["id"]) == 41
        assert row["object"] == "chat.completion"
        assert row["model"] == loaded.model.name_or_path
        usage = row["usage"]
        # Fewer tokens than allowed only when the model ended the completion itself.
        reason = "length" if usage["completion_tokens"] == 4 else "stop"
        assert row["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "logprobs": None,
                "finish_reason": reason,
            }
        ]
        assert usage["prompt_tokens"] == prompt_tokens
        assert 1 <= usage["completion_tokens"] <= 4
        assert usage["total_tokens"] == prompt_tokens + usage["completion_tokens"]
    import torch

    # Seeded: a sampled end-of-sequence token would end a choice early (its padding not counted).
    torch.manual_seed(0)
    sampled = _run(fn, pd.DataFrame({"messages": conversations[:1]}), {"n": 3, "max_completion_tokens": 2})
    assert [c["index"] for c in sampled["choices"][0]] == [0, 1, 2]
    assert sampled["usage"][0]["completion_tokens"] == 6
    arrays = dict(fn.output_arrays(out))
    assert json.loads(arrays["usage"][0].as_py())["prompt_tokens"] == out["usage"][0]["prompt_tokens"]


def test_chat_knobs_as_columns_and_stop_strings(tiny: TinyPipelines, tmp_path: Path) -> None:
    pipe = tiny.chat()
    _, fn = _serve(pipe, tmp_path, signatures=OPENAI_CHAT_SIGNATURE)
    messages = [{"role": "user", "content": "complete the sentence once upon a time"}]
    reply, _ = _expected_chat(pipe, messages, 8)
    row = {
        "messages": [messages],
        "temperature": [0.0],
        "max_completion_tokens": [8],
        "stop": [None],
        "n": [1],
        "stream": [False],
        "top_p": [1.0],
        "frequency_penalty": [0.0],
        "presence_penalty": [0.0],
        "response_format": [None],
    }
    out = _run(fn, pd.DataFrame(row))
    assert out["choices"][0][0]["message"]["content"] == reply
    assert (out["usage"][0]["completion_tokens"], out["choices"][0][0]["finish_reason"]) == (8, "length")
    # An ASCII stop string: the text before it decodes the same however generation is cut.
    stop = next(c for c in reply[1:] if c.isascii() and c.isalnum())
    out = _run(fn, pd.DataFrame({**row, "stop": [[stop]]}))
    assert out["choices"][0][0]["message"]["content"] == reply[: reply.find(stop)]
    assert out["choices"][0][0]["finish_reason"] == "stop"


def _vision_messages(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in this picture"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_vision_chat_is_saved_with_its_processor_and_sees_images(tiny: TinyPipelines, tmp_path: Path) -> None:
    import base64

    import transformers

    pipe = tiny.vision_chat()
    loaded, fn = _serve(pipe, tmp_path)
    blob = tmp_path / "model" / "models" / "HF" / "model"
    assert {"processor_config.json", "chat_template.jinja", "preprocessor_config.json"} <= {
        p.name for p in blob.iterdir()
    }
    assert isinstance(loaded.processor, transformers.LlavaProcessor)
    assert (loaded.processor.patch_size, loaded.processor.image_token) == (8, "<image>")
    assert fn.signature == OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
    urls = [f"data:image/png;base64,{base64.b64encode(png_bytes(seed)).decode()}" for seed in (1, 2)]
    conversations = [_vision_messages(url) for url in urls]
    out = _run(
        fn, pd.DataFrame({"messages": conversations}), {"temperature": 0.0, "max_completion_tokens": 3}
    )
    for row, messages in zip(out.to_dict(orient="records"), conversations, strict=True):
        reply = pipe(text=json.loads(json.dumps(messages)), max_new_tokens=3, return_full_text=False)
        assert row["choices"][0]["message"]["content"] == reply[0]["generated_text"]
        assert row["choices"][0]["finish_reason"] == "length"
        # 4 image tokens stand for the image in the prompt.
        text_only = loaded.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "text", "text": "what is in this picture"}]}],
            add_generation_prompt=True,
            tokenize=True,
        )[0]
        assert row["usage"] == {
            "prompt_tokens": len(text_only) + 4,
            "completion_tokens": 3,
            "total_tokens": len(text_only) + 7,
        }
    # A stop string the first completion reaches at its second token: cut before it, "stop".
    generated = pipe(text=json.loads(json.dumps(conversations[0])), max_new_tokens=3, return_tensors=True)
    first = generated[0]["generated_token_ids"][-3:].tolist()
    text = pipe.tokenizer.decode(first[:2], skip_special_tokens=True)
    stop = text[-1]
    assert stop not in pipe.tokenizer.decode(first[:1], skip_special_tokens=True)
    out = _run(
        fn,
        pd.DataFrame({"messages": conversations[:1]}),
        {"temperature": 0.0, "max_completion_tokens": 3, "stop": [stop]},
    )
    assert out["choices"][0] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": text[: text.find(stop)]},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert out["usage"][0]["completion_tokens"] == 2


def test_vision_chat_choices_each_see_every_image_in_order(tiny: TinyPipelines, tmp_path: Path) -> None:
    """n choices of a prompt with two images: each one generation of the prompt as it is."""
    import base64

    import torch
    from PIL import Image

    loaded, fn = _serve(tiny.vision_chat(), tmp_path)
    pngs = [png_bytes(seed) for seed in (1, 2)]
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{base64.b64encode(p).decode()}"},
                }
                for p in pngs
            ]
            + [{"type": "text", "text": "what is in these pictures"}],
        }
    ]
    torch.manual_seed(0)
    out = _run(fn, pd.DataFrame({"messages": [messages]}), {"n": 2, "max_completion_tokens": 3})
    turns = [
        {
            "role": "user",
            "content": [{"type": "image", "image": Image.open(io.BytesIO(p)).convert("RGB")} for p in pngs]
            + [{"type": "text", "text": "what is in these pictures"}],
        }
    ]
    inputs = loaded.processor.apply_chat_template(
        turns, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    prompt = inputs["input_ids"].shape[1]
    torch.manual_seed(0)
    expected = [
        loaded.tokenizer.decode(
            loaded.model.generate(**inputs, do_sample=True, temperature=1.0, max_new_tokens=3)[0][prompt:],
            skip_special_tokens=True,
        )
        for _ in range(2)
    ]
    assert [(c["index"], c["message"]["content"]) for c in out["choices"][0]] == list(enumerate(expected))
    assert out["usage"][0]["prompt_tokens"] == prompt


def test_vision_chat_image_urls_it_cannot_read_are_row_errors(tiny: TinyPipelines, tmp_path: Path) -> None:
    from runbatch.errors import InputRowError

    _, fn = _serve(tiny.vision_chat(), tmp_path)
    cases = {
        "data:image/png,plain": (
            "IMAGE_INVALID",
            "The image_url (a data URL (image/png, 20 characters)) is not a readable image: only base64 "
            "data URLs (data:<mime>;base64,...) are supported",
        ),
        "data:image/png;base64,bm90IGFuIGltYWdl": (
            "IMAGE_INVALID",
            "The image_url (a data URL (image/png;base64, 38 characters)) is not a readable image: "
            "cannot identify image file <_io.BytesIO object at ",
        ),
        "http://alice:s3cret@127.0.0.1:9/cat.png?X-Amz-Signature=abc": (
            "IMAGE_INVALID",
            "The image_url (http://127.0.0.1:9/cat.png) was not fetched: its host 127.0.0.1 is a loopback "
            "address, and runtimes fetch only public ones (RUNBATCH_FILE_FETCH_URLS=public).",
        ),
        "pics/cat.png": (
            "MESSAGES_INVALID",
            "The image_url 'pics/cat.png' is neither a stage path (@stage/path), a data: URL nor an http(s) "
            "URL. Name the image by one of these.",
        ),
    }
    for url, (code, message) in cases.items():
        with pytest.raises(InputRowError) as err:
            _run(fn, pd.DataFrame({"messages": [_vision_messages(url)]}), {"max_completion_tokens": 2})
        assert err.value.row_code == code
        assert str(err.value).startswith(message)
    missing = [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]
    with pytest.raises(InputRowError) as err:
        _run(fn, pd.DataFrame({"messages": [missing]}), {"max_completion_tokens": 2})
    assert (err.value.row_code, str(err.value)) == (
        "MESSAGES_INVALID",
        'An image_url part needs {"image_url": {"url": ...}} with a stage path, a data: URL or an http(s) '
        "URL, got NoneType.",
    )


def test_only_pipelines_are_handled_and_other_models_never_import_transformers() -> None:
    code = (
        "import sys\n"
        "from runbatch.packager.handlers import find_handler\n"
        "from runbatch.packager.handlers.huggingface_pipeline import HuggingFacePipelineHandler\n"
        "from tests.e2e.models import Doubler\n"
        "assert not HuggingFacePipelineHandler().can_handle(Doubler())\n"
        "assert find_handler(Doubler()).handler_type == 'custom'\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
