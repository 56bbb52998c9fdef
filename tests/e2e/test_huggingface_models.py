"""transformers pipelines through the registry: log, run, run_batch for each task, load, export."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runbatch.ml.model.batch import InputSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.packager import load_model
from runbatch.snowpark import Session
from tests.hf_models import TinyPipelines, assert_same, png_bytes, shared_pipelines, wav_bytes

POOL = "SYSTEM_COMPUTE_POOL_CPU"
QA_NUMPY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


@pytest.fixture(scope="module")
def registry(embedded_session: Session) -> Registry:
    db = f"T_{uuid.uuid4().hex[:10].upper()}"
    embedded_session.sql(f"CREATE DATABASE {db}").collect()
    embedded_session.sql("CREATE STAGE DATA").collect()
    return Registry(embedded_session, database_name=db)


@dataclass
class Case:
    """One task: its pipeline, input rows, params, and the rows expected in the output columns."""

    name: str
    pipe: Any
    data: pd.DataFrame
    expected: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    check: Callable[[list[dict[str, Any]], list[dict[str, Any]]], None] = assert_same


def _with_ids(data: dict[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(data)
    # Not "ID": the chat output "id" would replace it (output names replace inputs case-insensitively).
    frame.insert(0, "ROW", np.arange(len(frame), dtype=np.int64))
    return frame


def _image(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data))


def _audio(data: bytes) -> dict[str, Any]:
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return {"raw": samples.mean(axis=1, dtype=np.float32), "sampling_rate": rate}


def _check_chat(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    for got, want in zip(actual, expected, strict=True):
        assert got["object"] == "chat.completion" and got["id"].startswith("chatcmpl-")
        # Cut at max_completion_tokens (4) is "length"; fewer tokens only when the model ended it.
        reason = "length" if got["usage"]["completion_tokens"] == 4 else "stop"
        assert got["choices"] == [{**c, "finish_reason": reason} for c in want["choices"]]
        assert got["usage"]["prompt_tokens"] == want["prompt_tokens"]


def _cases(tiny: TinyPipelines) -> list[Case]:
    texts = ["i love this product", "the food was terrible", "paris is the capital of france"]
    cls = tiny.text_classification()
    fill = tiny.fill_mask()
    masked = ["paris is the [MASK] of france", "the [MASK] sat on the mat"]
    qa = tiny.question_answering()
    questions = ["who works at acme", "what sat on the mat"]
    contexts = ["alice works at acme in london", "the cat sat on the mat with a hat"]
    summarize = tiny.summarization()
    docs = [
        "summarize the long document about trains and boats",
        "the quick brown fox jumps over the lazy dog",
    ]
    zero_shot = tiny.zero_shot_classification()
    labels = [["sports", "cooking"], ["politics", "sports", "cooking"]]
    image_cls = tiny.image_classification()
    images = [png_bytes(0), png_bytes(1, size=40), png_bytes(2)]
    asr = tiny.speech_recognition()
    clips = [wav_bytes(0), wav_bytes(1, seconds=0.3, channels=2)]
    chat = tiny.chat()
    conversations = [
        [{"role": "user", "content": "hello how are you"}],
        [
            {"role": "system", "content": "you are a helpful bot"},
            {"role": "user", "content": "once upon a time"},
        ],
    ]
    replies = [
        chat(c, max_new_tokens=4, do_sample=False)[0]["generated_text"][-1]["content"] for c in conversations
    ]
    return [
        Case("text_classification", cls, _with_ids({"text": texts}), cls(texts)),
        Case("fill_mask", fill, _with_ids({"inputs": masked}), [{"outputs": r} for r in fill(masked)]),
        Case(
            "question_answering",
            qa,
            _with_ids({"question": questions, "context": contexts}),
            qa(question=questions, context=contexts),
        ),
        Case(
            "summarization",
            summarize,
            _with_ids({"documents": docs}),
            summarize(docs, num_beams=2),
            params={"num_beams": 2},
        ),
        Case(
            "zero_shot",
            zero_shot,
            _with_ids({"sequences": docs, "candidate_labels": labels}),
            [zero_shot(d, candidate_labels=c) for d, c in zip(docs, labels, strict=True)],
        ),
        Case(
            "image_classification",
            image_cls,
            _with_ids({"images": images}),
            [{"labels": r} for r in image_cls([_image(b) for b in images], top_k=2)],
            params={"top_k": 2},
        ),
        Case("speech", asr, _with_ids({"audio": clips}), [{"outputs": asr(_audio(c))} for c in clips]),
        Case(
            "chat",
            chat,
            _with_ids({"messages": conversations}),
            [
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "logprobs": None,
                        }
                    ],
                    "prompt_tokens": len(chat.tokenizer.apply_chat_template(c, add_generation_prompt=True)),
                }
                for c, reply in zip(conversations, replies, strict=True)
            ],
            params={"temperature": 0.0, "max_completion_tokens": 4},
            check=_check_chat,
        ),
    ]


_OUTPUTS = {
    "text_classification": ["label", "score"],
    "fill_mask": ["outputs"],
    "question_answering": ["score", "start", "end", "answer"],
    "summarization": ["summary_text"],
    "zero_shot": ["sequence", "labels", "scores"],
    "image_classification": ["labels"],
    "speech": ["outputs"],
    "chat": ["id", "object", "created", "model", "choices", "usage"],
}
_GROUPED = {"outputs", "labels", "choices", "usage"}


def _from_parquet(out: pd.DataFrame, columns: list[str], case: str) -> list[dict[str, Any]]:
    """Output rows as Python values: grouped outputs were written as JSON text, lists as arrays."""
    rows = []
    for record in out[columns].to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            if key in _GROUPED and not (case == "zero_shot" and key == "labels"):
                value = json.loads(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            row[key] = value
        rows.append(row)
    return rows


@pytest.mark.filterwarnings(QA_NUMPY_WARNING)
def test_each_task_runs_locally_and_in_batch_like_the_pipeline(
    embedded_session: Session, registry: Registry, tiny: TinyPipelines
) -> None:
    cases = _cases(tiny)
    jobs = []
    for case in cases:
        mv = registry.log_model(case.pipe, model_name=case.name.upper())
        assert [f["name"] for f in mv.show_functions()] == ["__CALL__"]
        local = mv.run(case.data, params=case.params or None)
        assert list(local.columns) == _OUTPUTS[case.name], case.name
        case.check(local.to_dict(orient="records"), case.expected)
        jobs.append(
            mv.run_batch(
                embedded_session.create_dataframe(case.data),
                compute_pool=POOL,
                input_spec=InputSpec(params=case.params or None),
                output_spec=OutputSpec(stage_location=f"@DATA/{case.name}/"),
            )
        )
    for case, job in zip(cases, jobs, strict=True):
        assert job.wait(180) == "DONE", job.get_logs()
        out = (
            embedded_session.read.option("pattern", ".*\\.parquet").parquet(f"@DATA/{case.name}/").to_pandas()
        )
        out = out.sort_values("ROW").reset_index(drop=True)
        inputs = list(case.data.columns)
        assert list(out.columns) == inputs + _OUTPUTS[case.name], case.name
        case.check(_from_parquet(out, _OUTPUTS[case.name], case.name), case.expected)


@pytest.mark.filterwarnings(QA_NUMPY_WARNING)
def test_more_tasks_run_locally_like_the_pipeline(registry: Registry, tiny: TinyPipelines) -> None:
    sentences = ["alice works at acme in london", "hello world good morning"]
    ner = tiny.token_classification()
    local = registry.log_model(ner, model_name="NER").run(pd.DataFrame({"inputs": sentences}))
    assert list(local.columns) == ["outputs"]
    assert_same(local["outputs"].tolist(), ner(sentences))
    for name, pipe, column, output in (
        ("T2T", tiny.text2text_generation(), "inputs", "generated_text"),
        ("TRANSLATE", tiny.translation(), "inputs", "translation_text"),
    ):
        local = registry.log_model(pipe, model_name=name).run(pd.DataFrame({column: sentences}))
        assert list(local.columns) == [output]
        assert local[output].tolist() == [r[output] for r in pipe(sentences)]
    generate = tiny.text_generation()
    local = registry.log_model(generate, model_name="GEN").run(pd.DataFrame({"inputs": sentences}))
    assert list(local.columns) == ["outputs"]
    assert_same(local["outputs"].tolist(), generate(sentences))
    top2 = tiny.question_answering(top_k=2)
    mv = registry.log_model(top2, model_name="QA2")
    qa = pd.DataFrame({"question": ["who works at acme"], "context": ["alice works at acme in london"]})
    local = mv.run(qa, params={"top_k": 2})
    assert list(local.columns) == ["answers"]
    assert_same(local["answers"].tolist(), [top2(question=qa.question.tolist(), context=qa.context.tolist())])


def test_load_and_export(registry: Registry, tiny: TinyPipelines, tmp_path: Path) -> None:
    import transformers

    pipe = tiny.text_classification(top_k=2)
    mv = registry.log_model(pipe, model_name="CLS2")
    texts = ["i love this product", "the food was terrible"]
    with pytest.warns(RuntimeWarning):
        loaded = mv.load()
    assert type(loaded) is transformers.TextClassificationPipeline
    assert_same(loaded(texts), pipe(texts))
    mv.export(str(tmp_path / "export"))
    exported, meta = load_model(tmp_path / "export")
    assert type(exported) is transformers.TextClassificationPipeline
    assert meta.models["CLS2"].options["task"] == "text-classification"
    assert_same(exported(texts), pipe(texts))
