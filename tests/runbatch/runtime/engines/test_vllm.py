"""The vLLM engine against vLLM's interface (a recorded fake, fake_vllm.py): no GPU, no vLLM here.

The shard pipeline runs a logged tiny GPT-2 chat pipeline through ``vllm_function`` with the
fake's ``LLM``/``SamplingParams``: messages with media on a stage, whole batches per ``chat``
call, engine arguments and tensor parallelism, per-row params, token counts, error rows.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.ml.model.openai_signatures import OPENAI_CHAT_SIGNATURE
from runbatch.packager.package import save_model
from runbatch.runtime.engines.vllm import parse_engine_args, vllm_function
from runbatch.runtime.pipeline import PipelineConfig, ShardPipeline
from runbatch.runtime.stage_files import MountedStage, StageFiles
from runbatch.stage.storage import Storage, open_storage
from runbatch.wire.jobs import InputSlice, OutputFile
from tests.hf_models import TinyPipelines, png_bytes, shared_pipelines, wav_bytes
from tests.runbatch.runtime.engines import fake_vllm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


@pytest.fixture(autouse=True)
def record() -> fake_vllm.Recorder:
    fake_vllm.RECORD.__init__()  # type: ignore[misc]
    return fake_vllm.RECORD


def test_engine_args_parse_like_vllms_command_line() -> None:
    assert parse_engine_args(
        [
            "--max-model-len=4096",
            "--gpu-memory-utilization",
            "0.85",
            "--enforce-eager",
            "--dtype=bfloat16",
            '--limit-mm-per-prompt={"image": 2}',
            "--trust-remote-code=false",
            "--tensor-parallel-size=1",
            "--tensor-parallel-size=4",
        ]
    ) == {
        "max_model_len": 4096,
        "gpu_memory_utilization": 0.85,
        "enforce_eager": True,
        "dtype": "bfloat16",
        "limit_mm_per_prompt": {"image": 2},
        "trust_remote_code": False,
        "tensor_parallel_size": 4,
    }
    with pytest.raises(InvalidArgumentError) as err:
        parse_engine_args(["max_model_len=4096"])
    assert str(err.value) == (
        "Engine argument 'max_model_len=4096' is not a vLLM engine argument; write them as in vLLM's command line, "
        "for example engine_args_override=['--max-model-len=4096', '--enforce-eager']."
    )


def _save(tiny: TinyPipelines, folder: Path, signatures: dict[str, Any] | None = None) -> Path:
    save_model(tiny.chat(), folder, name="CHAT", signatures=signatures, options={"cuda_version": "12.4"})
    return folder


def test_without_vllm_the_engine_names_the_gpu_image(
    tiny: TinyPipelines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UnsupportedError) as err:
        vllm_function(_save(tiny, tmp_path / "v"), "__call__", [])
    assert str(err.value) == (
        "The vLLM engine needs vLLM, which is in the GPU runtime image only. Run the job on a GPU compute pool with "
        "gpu_requests set, served by a worker with the docker executor (RUNBATCH_EXECUTOR=docker; its GPU image is "
        "runtime_images/gpu, or RUNBATCH_DOCKER_GPU_IMAGE)."
    )


def _pipeline(
    storage: Storage, rows: int, batch_rows: int, params: dict[str, Any], columns: dict[str, str]
) -> ShardPipeline:
    files = StageFiles(
        {("DB", "S", "MEDIA"): MountedStage(storage, "stages/MEDIA")},
        default_database="DB",
        default_schema="S",
    )
    return ShardPipeline(
        PipelineConfig(
            input_storage=storage,
            output_storage=storage,
            slices=[InputSlice(key="in/chat.parquet", offset=0, rows=rows)],
            output_prefix="out/a",
            shard_index=0,
            batch_rows=batch_rows,
            feature_columns=columns,
            params=params,
            files=files,
        )
    )


def _read(storage: Storage, files: list[OutputFile], kind: str) -> pd.DataFrame:
    tables = [pq.read_table(storage.open_input_file(f.key)) for f in files if f.kind == kind]
    return pa.concat_tables(tables).to_pandas()


def _joined(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A conversation as vLLM renders it for a text-only template: text parts joined by newlines."""
    turns = []
    for m in messages:
        content = m["content"]
        text = (
            content
            if isinstance(content, str)
            else "\n".join(p["text"] for p in content if p["type"] == "text")
        )
        turns.append({"role": m["role"], "content": text})
    return turns


def test_batches_go_to_llm_chat_whole_with_media_resolved_and_bad_rows_as_error_rows(
    tiny: TinyPipelines, tmp_path: Path, record: fake_vllm.Recorder
) -> None:
    storage = open_storage(f"file://{tmp_path / 'store'}")
    image, sound = png_bytes(4, size=20), wav_bytes(5)
    storage.write_bytes("stages/MEDIA/pics/cat.png", image)
    storage.write_bytes("stages/MEDIA/audio/a.wav", sound)
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(6)).decode("ascii")
    conversations: list[list[dict[str, Any]]] = [
        [{"role": "user", "content": "hello how are you"}],
        [
            {"role": "system", "content": [{"type": "text", "text": "you are a helpful bot"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "@MEDIA/pics/cat.png"}},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            },
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "@DB.S.MEDIA/audio/a.wav"}},
                    {"type": "text", "text": "once upon a time"},
                ],
            }
        ],
        [{"role": "user", "content": " ".join(["the cat sat on the mat"] * 40)}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "@MEDIA/pics/gone.png"}}]}],
        [{"role": "user", "content": "the quick brown fox"}],
    ]
    with storage.open_output_stream("in/chat.parquet") as sink:
        pq.write_table(
            pa.table({"ROW": list(range(6)), "MESSAGES": [json.dumps(c) for c in conversations]}), sink
        )
    fn = vllm_function(
        _save(tiny, tmp_path / "v"),
        "__call__",
        ["--max-model-len=128", "--enforce-eager", "--tensor-parallel-size=2"],
        llm_class=fake_vllm.LLM,
        sampling_params_class=fake_vllm.SamplingParams,
    )
    assert record.inits == [
        {
            "model": str(tmp_path / "v" / "model" / "models" / "CHAT" / "model"),
            "tensor_parallel_size": 2,
            "gpu_memory_utilization": 0.9,
            "enforce_eager": True,
            "max_model_len": 128,
        }
    ]
    params = {"temperature": 0.0, "max_completion_tokens": 3, "top_p": 1.0, "stop": [], "n": 1}
    pipeline = _pipeline(storage, 6, 3, params, {"messages": "MESSAGES"})
    files = pipeline.run(fn, lambda rows: None)
    assert (pipeline.rows_in, pipeline.rows_failed) == (6, 2)

    # Whole batches per chat call; the failed batch (rows 3-5) narrowed down by halves.
    sizes = [len(conversations) for conversations, _ in record.chats]
    assert sizes[0] == 3 and sum(sizes[1:]) >= 1
    assert all(
        p == fake_vllm.SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=3, stop=[])
        for _, ps in record.chats
        for p in ps
    )
    # Stage files reached vLLM as data: the image's and the audio's exact bytes.
    assert record.images == [image, png_bytes(6)]
    assert record.audio == [(sound, "wav")]

    out = _read(storage, files, "data").sort_values("ROW").reset_index(drop=True)
    assert out["ROW"].tolist() == [0, 1, 2, 5]
    pipe = tiny.chat()
    for i, row in out.iterrows():
        turns = _joined(conversations[row["ROW"]])
        reply = pipe(turns, max_new_tokens=3, do_sample=False)[0]["generated_text"][-1]["content"]
        prompt_tokens = len(pipe.tokenizer.apply_chat_template(turns, add_generation_prompt=True))
        choices, usage = json.loads(row["choices"]), json.loads(row["usage"])
        assert choices == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "logprobs": None,
                "finish_reason": "length",
            }
        ], i
        assert usage == {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 3,
            "total_tokens": prompt_tokens + 3,
        }
        # The model's name when it was logged (a hub id; here the tiny model's folder).
        assert (row["object"], row["model"]) == ("chat.completion", pipe.model.name_or_path)
    errors = _read(storage, files, "errors").sort_values("ROW")
    long_tokens = len(
        pipe.tokenizer.apply_chat_template(_joined(conversations[3]), add_generation_prompt=True)
    )
    assert errors[["ROW", "ERROR_CODE", "ERROR_MESSAGE"]].to_dict(orient="records") == [
        {
            "ROW": 3,
            "ERROR_CODE": "PROMPT_TOO_LONG",
            "ERROR_MESSAGE": f"The prompt is {long_tokens} tokens long (chat template applied), but the model takes at "
            "most 128 tokens (max_model_len), prompt and completion together. Shorten the messages, or raise "
            "--max-model-len in engine_args_override.",
        },
        {
            "ROW": 4,
            "ERROR_CODE": "FILE_NOT_FOUND",
            "ERROR_MESSAGE": "File @DB.S.MEDIA/pics/gone.png does not exist.",
        },
    ]


def test_signatures_without_params_take_sampling_settings_per_row(
    tiny: TinyPipelines, tmp_path: Path, record: fake_vllm.Recorder
) -> None:
    storage = open_storage(f"file://{tmp_path / 'store'}")
    messages = [json.dumps([{"role": "user", "content": text}]) for text in ("hello", "once upon a time")]
    with storage.open_output_stream("in/chat.parquet") as sink:
        pq.write_table(
            pa.table(
                {
                    "MESSAGES": messages,
                    "TEMPERATURE": [0.0, 0.0],
                    "MAX_COMPLETION_TOKENS": pa.array([2, 5], pa.int64()),
                    "STOP": [None, ["zz"]],
                    "N": pa.array([1, 1], pa.int32()),
                    "STREAM": [False, False],
                    "TOP_P": [0.5, 1.0],
                    "FREQUENCY_PENALTY": [0.0, 0.25],
                    "PRESENCE_PENALTY": [0.5, 0.0],
                    "RESPONSE_FORMAT": pa.array([None, None], pa.string()),
                }
            ),
            sink,
        )
    fn = vllm_function(
        _save(tiny, tmp_path / "v", OPENAI_CHAT_SIGNATURE),
        "__call__",
        [],
        llm_class=fake_vllm.LLM,
        sampling_params_class=fake_vllm.SamplingParams,
    )
    columns = {f.name: f.name.upper() for f in fn.signature.inputs}
    files = _pipeline(storage, 2, 10, {}, columns).run(fn, lambda rows: None)
    assert record.inits[0]["tensor_parallel_size"] == 1
    ((_, sampling),) = record.chats
    assert sampling == [
        fake_vllm.SamplingParams(
            n=1, temperature=0.0, top_p=0.5, max_tokens=2, stop=None, presence_penalty=0.5
        ),
        fake_vllm.SamplingParams(
            n=1, temperature=0.0, top_p=1.0, max_tokens=5, stop=["zz"], frequency_penalty=0.25
        ),
    ]
    usage = [json.loads(u) for u in _read(storage, files, "data")["usage"]]
    assert [u["completion_tokens"] for u in usage] == [2, 5]
