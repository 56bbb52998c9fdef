"""Chat models over OpenAI messages: media parts on stages, generation params, token counts, error rows.

A tiny GPT-2 with a chat template (tests/hf_models.py) is logged with the OpenAI chat signature
(inferred from its chat template) and run over ``messages`` columns whose content parts name
images, audio and video on an internal stage and on an external S3 stage (moto). Completions
and token counts are compared with the model called directly (greedy decoding) on the same
turns; the transformers engine passes text parts to a text model, one turn per part.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from minio import Minio

from runbatch.errors import InvalidArgumentError
from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.hf_models import TinyPipelines, png_bytes, shared_pipelines, wav_bytes
from tests.services import MotoServer

POOL = "SYSTEM_COMPUTE_POOL_CPU"
CORRUPT = b"not an image" * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def _upload(session: Session, stage: str, path: str, data: bytes) -> None:
    session._conn.client.upload_stage_file(session._conn.database, "PUBLIC", stage, path, data)


def _log_chat(session: Session, tiny: TinyPipelines) -> ModelVersion:
    return Registry(session).log_model(tiny.chat(), model_name=f"CHAT_{uuid.uuid4().hex[:6].upper()}")


def _text_turns(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What a text model sees of a conversation: each text part as a turn of its role."""
    turns = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            turns.append({"role": message["role"], "content": content})
        else:
            turns.extend(
                {"role": message["role"], "content": p["text"]} for p in content if p["type"] == "text"
            )
    return turns


def _direct(tiny: TinyPipelines, messages: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    """The completion, its token counts and the pipeline's own answer, from the model called directly."""
    import torch

    pipe = tiny.chat()
    turns = _text_turns(messages)
    reply = pipe(turns, max_new_tokens=max_tokens, do_sample=False)[0]["generated_text"][-1]["content"]
    ids = pipe.tokenizer.apply_chat_template(turns, add_generation_prompt=True, return_tensors="pt")
    out = pipe.model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_tokens,
        do_sample=False,
        pad_token_id=pipe.tokenizer.eos_token_id,
    )
    generated = out[0][ids.shape[1] :]
    ended = int(generated[-1]) == pipe.tokenizer.eos_token_id
    return {
        "content": pipe.tokenizer.decode(generated, skip_special_tokens=True),
        "pipeline_reply": reply,
        "prompt_tokens": int(ids.shape[1]),
        "completion_tokens": len(generated),
        # OpenAI's reasons: cut at max_completion_tokens is "length", an end of its own "stop".
        "finish_reason": "length" if len(generated) == max_tokens and not ended else "stop",
    }


def _outputs(session: Session, location: str) -> pd.DataFrame:
    frame = session.read.option("pattern", ".*part-.*\\.parquet").parquet(location).to_pandas()
    return frame.sort_values("ROW").reset_index(drop=True)


def _errors(session: Session, location: str) -> list[dict[str, Any]]:
    frame = session.read.parquet(f"{location}_errors/").to_pandas().sort_values("ROW")
    return frame[["ROW", "ERROR_CODE", "ERROR_MESSAGE"]].to_dict(orient="records")  # type: ignore[no-any-return]


def _check_row(row: pd.Series, expected: dict[str, Any], max_tokens: int) -> None:
    choices, usage = json.loads(row["choices"]), json.loads(row["usage"])
    assert row["object"] == "chat.completion" and row["id"].startswith("chatcmpl-")
    assert choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": expected["content"]},
            "logprobs": None,
            "finish_reason": expected["finish_reason"],
        }
    ]
    assert choices[0]["message"]["content"] == expected["pipeline_reply"]
    assert usage == {
        "prompt_tokens": expected["prompt_tokens"],
        "completion_tokens": expected["completion_tokens"],
        "total_tokens": expected["prompt_tokens"] + expected["completion_tokens"],
    }
    assert usage["completion_tokens"] <= max_tokens


def _conversations(db: str, ext: str | None) -> list[list[dict[str, Any]]]:
    image_on_ext = f"@{ext}/pics/cat.png" if ext else f"@{db}.PUBLIC.MEDIA/pics/cat.png"
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(9)).decode("ascii")
    return [
        [{"role": "user", "content": "hello how are you"}],
        [
            {"role": "system", "content": [{"type": "text", "text": "you are a helpful bot"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture"},
                    {"type": "image_url", "image_url": {"url": f"@{db}.PUBLIC.MEDIA/pics/dog.png"}},
                    {"type": "image_url", "image_url": {"url": image_on_ext}},
                ],
            },
        ],
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "input_audio": {"data": "@MEDIA/audio/hello.wav", "format": "wav"},
                    },
                    {"type": "text", "text": "transcribe once upon a time"},
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": "@MEDIA/clips/kitchen.mp4"}},
                    {"type": "image_url", "image_url": {"url": data_url}},
                    {"type": "text", "text": "the cat sat on the mat"},
                ],
            }
        ],
    ]


def _put_media(session: Session) -> None:
    session.sql("CREATE STAGE MEDIA").collect()
    _upload(session, "MEDIA", "pics/dog.png", png_bytes(1, size=32))
    _upload(session, "MEDIA", "pics/cat.png", png_bytes(2))
    _upload(session, "MEDIA", "audio/hello.wav", wav_bytes(3))
    _upload(session, "MEDIA", "clips/kitchen.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    _upload(session, "MEDIA", "pics/broken.png", CORRUPT)


def test_chat_over_stage_media_matches_the_model_called_directly(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    """JSON messages with every content part type, stage paths resolved; params honoured; token counts."""
    session = embedded_session
    _put_media(session)
    conversations = _conversations(embedded_db, None)
    frame = pd.DataFrame(
        {"ROW": np.arange(len(conversations)), "messages": [json.dumps(c) for c in conversations]}
    )
    mv = _log_chat(session, tiny)
    jobs = {}
    for max_tokens in (5, 2):
        jobs[max_tokens] = mv.run_batch(
            session.create_dataframe(frame),
            compute_pool=POOL,
            input_spec=InputSpec(params={"temperature": 0.0, "max_completion_tokens": max_tokens}),
            output_spec=OutputSpec(stage_location=f"@DATA/chat{max_tokens}/"),
            job_spec=JobSpec(max_batch_rows=3),
        )
    for max_tokens, job in jobs.items():
        assert job.wait(180) == "DONE", job.get_logs()
        assert (job.info.rows_done, job.info.rows_failed) == (4, 0)
        out = _outputs(session, f"@DATA/chat{max_tokens}/")
        assert list(out.columns) == [
            "ROW",
            "messages",
            "id",
            "object",
            "created",
            "model",
            "choices",
            "usage",
        ]
        # The input column is passed through as given: stage paths, not the files' data.
        assert out["messages"].tolist() == frame["messages"].tolist()
        for i, conversation in enumerate(conversations):
            _check_row(out.iloc[i], _direct(tiny, conversation, max_tokens), max_tokens)
        usage = [json.loads(u) for u in out["usage"]]
        assert all(u["completion_tokens"] == max_tokens for u in usage if max_tokens == 2)
        if max_tokens == 2:
            # Every completion was cut at max_completion_tokens.
            reasons = [json.loads(c)[0]["finish_reason"] for c in out["choices"]]
            assert reasons == ["length"] * len(conversations)


def test_bad_rows_become_error_rows_and_the_rest_complete(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    """A too-long prompt, a missing and a corrupt image, a missing audio file and bad JSON: error rows."""
    session = embedded_session
    _put_media(session)
    good = [{"role": "user", "content": "hello how are you"}]
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 20)
    tokenizer = tiny.chat().tokenizer
    long_tokens = len(
        tokenizer.apply_chat_template([{"role": "user", "content": long_text}], add_generation_prompt=True)
    )
    assert long_tokens > 128

    def image(path: str) -> str:
        return json.dumps(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": path}},
                        {"type": "text", "text": "hi"},
                    ],
                }
            ]
        )

    cells = [
        json.dumps(good),
        json.dumps([{"role": "user", "content": long_text}]),
        image("@MEDIA/pics/missing.png"),
        image("@MEDIA/pics/broken.png"),
        json.dumps(
            [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "@MEDIA/none.wav"}}],
                }
            ]
        ),
        "[{not json",
        json.dumps([{"role": "user", "content": "once upon a time"}]),
    ]
    mv = _log_chat(session, tiny)
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"ROW": np.arange(len(cells)), "messages": cells})),
        compute_pool=POOL,
        input_spec=InputSpec(params={"temperature": 0.0, "max_completion_tokens": 3}),
        output_spec=OutputSpec(stage_location="@DATA/bad/"),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    assert (job.info.rows_done, job.info.rows_failed) == (7, 5)
    out = _outputs(session, "@DATA/bad/")
    assert out["ROW"].tolist() == [0, 6]
    _check_row(out.iloc[0], _direct(tiny, good, 3), 3)
    errors = _errors(session, "@DATA/bad/")
    stage = f"@{embedded_db}.PUBLIC.MEDIA"
    assert [(e["ROW"], e["ERROR_CODE"]) for e in errors] == [
        (1, "PROMPT_TOO_LONG"),
        (2, "FILE_NOT_FOUND"),
        (3, "IMAGE_INVALID"),
        (4, "FILE_NOT_FOUND"),
        (5, "MESSAGES_INVALID"),
    ]
    assert errors[0]["ERROR_MESSAGE"] == (
        f"The prompt is {long_tokens} tokens long (chat template applied), but the model takes at most 128 "
        "tokens, prompt and completion together. Shorten the messages."
    )
    assert errors[1]["ERROR_MESSAGE"] == f"File {stage}/pics/missing.png does not exist."
    assert errors[2]["ERROR_MESSAGE"].startswith(f"File {stage}/pics/broken.png is not a readable image: ")
    assert errors[3]["ERROR_MESSAGE"] == f"File {stage}/none.wav does not exist."
    assert errors[4]["ERROR_MESSAGE"].startswith("The messages are not valid JSON: ")
    assert "Row failed (PROMPT_TOO_LONG)" in job.get_logs()


def test_messages_naming_a_stage_that_does_not_exist_are_refused_before_compute(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    session = embedded_session
    cell = json.dumps(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "@NOPE/cat.png"}}]}]
    )
    mv = _log_chat(session, tiny)
    with pytest.raises(InvalidArgumentError) as err:
        mv.run_batch(
            session.create_dataframe(pd.DataFrame({"messages": [cell]})),
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/nope/"),
        )
    assert str(err.value) == (
        f"Column messages (chat messages) names files on stage '{embedded_db}.PUBLIC.NOPE', which does not exist "
        "or not authorized. Create the stage, or correct the stage paths in the column."
    )


def test_chat_messages_name_images_on_an_external_s3_stage(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines, moto_server: MotoServer
) -> None:
    """Rows mix an internal stage and an external S3 stage (moto) in their image parts."""
    session = embedded_session
    _put_media(session)
    client = Minio(
        f"127.0.0.1:{moto_server.port}",
        access_key=moto_server.access_key,
        secret_key=moto_server.secret_key,
        secure=False,
    )
    bucket = moto_server.make_bucket()
    data = png_bytes(2)
    client.put_object(bucket, "media/pics/cat.png", io.BytesIO(data), len(data))
    session.sql(
        f"CREATE STAGE EXT URL = 's3://{bucket}/media/' ENDPOINT = '{moto_server.endpoint}' "
        "CREDENTIALS = (AWS_KEY_ID = 'ext-key' AWS_SECRET_KEY = 'ext-secret')"
    ).collect()
    conversations = _conversations(embedded_db, "EXT")[1:2]
    missing = json.loads(json.dumps(conversations[0]))
    missing[1]["content"][2]["image_url"]["url"] = "@EXT/pics/absent.png"
    cells = [json.dumps(conversations[0]), json.dumps(missing)]
    mv = _log_chat(session, tiny)
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"ROW": [0, 1], "messages": cells})),
        compute_pool=POOL,
        input_spec=InputSpec(params={"temperature": 0.0, "max_completion_tokens": 4}),
        output_spec=OutputSpec(stage_location="@DATA/ext/"),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    out = _outputs(session, "@DATA/ext/")
    assert out["ROW"].tolist() == [0]
    _check_row(out.iloc[0], _direct(tiny, conversations[0], 4), 4)
    assert _errors(session, "@DATA/ext/") == [
        {
            "ROW": 1,
            "ERROR_CODE": "FILE_NOT_FOUND",
            "ERROR_MESSAGE": f"File @{embedded_db}.PUBLIC.EXT/pics/absent.png does not exist.",
        }
    ]


def test_vllm_jobs_are_refused_on_cpu_pools_naming_the_fix(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    session = embedded_session
    mv = _log_chat(session, tiny)
    frame = session.create_dataframe(
        pd.DataFrame({"messages": [json.dumps([{"role": "user", "content": "hi"}])]})
    )
    with pytest.raises(InvalidArgumentError) as err:
        mv.run_batch(
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/vllm/"),
            inference_engine_options={
                "engine": InferenceEngine.VLLM,
                "engine_args_override": ["--max-model-len=64"],
            },
        )
    assert str(err.value) == (
        f"The vLLM engine runs on GPUs, in the GPU runtime image, but compute pool {POOL} has instance family "
        "CPU_X64_M. Use SYSTEM_COMPUTE_POOL_GPU or a pool with a GPU_NV_* family, or run without "
        "inference_engine_options (the transformers engine runs on CPU pools)."
    )
