"""Vision-language chat (``image-text-to-text``) on the transformers engine, images on stages.

A tiny LLaVA built from configs (tests/hf_models.py: CLIP vision tower, Llama text model, a
processor whose chat template turns image parts into image tokens) is logged with the OpenAI
chat signature and run over ``messages`` whose ``image_url`` parts name PNGs on an internal
stage and as data URLs. Completions are compared with transformers' own ``image-text-to-text``
pipeline called directly on the same images with greedy decoding; token counts with the
processor's prompt (each image expanded into its 4 image tokens).
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.hf_models import TinyPipelines, png_bytes, shared_pipelines

POOL = "SYSTEM_COMPUTE_POOL_CPU"
IMAGES = {"pics/dog.png": png_bytes(1, size=32), "pics/cat.png": png_bytes(2)}
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"not an image" * 4
# Each 16x16 image is cut into 2x2 patches of 8 pixels: 4 image tokens (the CLS token dropped).
TOKENS_PER_IMAGE = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _conversations(db: str) -> list[list[dict[str, Any]]]:
    return [
        [{"role": "user", "content": [_text("what is in this picture"), _image("@MEDIA/pics/dog.png")]}],
        [
            {"role": "system", "content": "you are a helpful bot"},
            {
                "role": "user",
                "content": [
                    _image(f"@{db}.PUBLIC.MEDIA/pics/cat.png"),
                    _text("and this one"),
                    _image(_data_url(png_bytes(9))),
                ],
            },
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": "@MEDIA/clips/kitchen.mp4"}},
                    _text("hello how are you"),
                ],
            }
        ],
    ]


def _as_pipeline_takes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as transformers' pipeline takes it: stage images as data URLs of the same
    bytes, string contents as one text part, and no video parts (the model takes images only)."""
    out = []
    for message in copy.deepcopy(messages):
        content = message["content"]
        if isinstance(content, str):
            content = [_text(content)]
        parts = []
        for part in content:
            if part["type"] == "image_url" and part["image_url"]["url"].startswith("@"):
                path = part["image_url"]["url"].split("/", 1)[1]
                part = _image(_data_url(IMAGES[path]))
            if part["type"] in ("text", "image_url"):
                parts.append(part)
        out.append({"role": message["role"], "content": parts})
    return out


def _prompt(tiny: TinyPipelines, turns: list[dict[str, Any]]) -> list[int]:
    """The prompt's token ids as the pipeline's preprocessing makes them (images as image parts)."""
    from transformers.image_utils import load_image

    pipe = tiny.vision_chat()
    processor_turns = [
        {
            "role": m["role"],
            "content": [
                {"type": "image", "image": load_image(p["image_url"]["url"])}
                if p["type"] == "image_url"
                else p
                for p in m["content"]
            ],
        }
        for m in turns
    ]
    prompt = pipe.processor.apply_chat_template(
        processor_turns, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"][0]
    images = sum(1 for m in turns for p in m["content"] if p["type"] == "image_url")
    assert prompt.count(pipe.processor.image_token_id) == TOKENS_PER_IMAGE * images
    return list(prompt)


def _direct(tiny: TinyPipelines, messages: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    """Completion, token counts and finish reason from the image-text-to-text pipeline called directly."""
    pipe = tiny.vision_chat()
    turns = _as_pipeline_takes(messages)
    reply = pipe(text=copy.deepcopy(turns), max_new_tokens=max_tokens, return_full_text=False)
    tensors = pipe(text=copy.deepcopy(turns), max_new_tokens=max_tokens, return_tensors=True)
    prompt = _prompt(tiny, turns)
    generated = tensors[0]["generated_token_ids"][len(prompt) :].tolist()
    ended = generated[-1] == pipe.tokenizer.eos_token_id
    return {
        "content": reply[0]["generated_text"],
        "prompt_tokens": len(prompt),
        "completion_tokens": len(generated),
        "finish_reason": "length" if len(generated) == max_tokens and not ended else "stop",
    }


def _upload(session: Session, path: str, data: bytes) -> None:
    session._conn.client.upload_stage_file(session._conn.database, "PUBLIC", "MEDIA", path, data)


def _outputs(session: Session, location: str) -> pd.DataFrame:
    frame = session.read.option("pattern", ".*part-.*\\.parquet").parquet(location).to_pandas()
    return frame.sort_values("ROW").reset_index(drop=True)


def _errors(session: Session, location: str) -> list[dict[str, Any]]:
    frame = session.read.parquet(f"{location}_errors/").to_pandas().sort_values("ROW")
    return frame[["ROW", "ERROR_CODE", "ERROR_MESSAGE"]].to_dict(orient="records")  # type: ignore[no-any-return]


def _log(session: Session, tiny: TinyPipelines) -> ModelVersion:
    return Registry(session).log_model(tiny.vision_chat(), model_name=f"VLM_{uuid.uuid4().hex[:6].upper()}")


def test_vision_chat_over_stage_images_matches_the_pipeline_called_directly(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    """Images on a stage and in data URLs reach the model; max_completion_tokens ends completions
    with finish_reason "length"; corrupt images, and a prompt whose image tokens overflow the
    context, are error rows."""
    session = embedded_session
    session.sql("CREATE STAGE MEDIA").collect()
    for path, data in IMAGES.items():
        _upload(session, path, data)
    _upload(session, "pics/broken.png", CORRUPT)
    _upload(session, "clips/kitchen.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    conversations = _conversations(embedded_db)
    # Few words, but 16 images of 4 tokens each: more than the model's 64 positions.
    many_images = [{"role": "user", "content": [_text("hi")] + [_image(_data_url(png_bytes(3)))] * 16}]
    cells = [json.dumps(c) for c in conversations] + [
        json.dumps([{"role": "user", "content": [_image("@MEDIA/pics/broken.png"), _text("hi")]}]),
        json.dumps([{"role": "user", "content": [_image(_data_url(CORRUPT)), _text("hi")]}]),
        json.dumps(many_images),
    ]
    frame = pd.DataFrame({"ROW": np.arange(len(cells)), "messages": cells})
    max_tokens = 4
    expected = [_direct(tiny, c, max_tokens) for c in conversations]
    mv = _log(session, tiny)
    job = mv.run_batch(
        session.create_dataframe(frame),
        compute_pool=POOL,
        input_spec=InputSpec(params={"temperature": 0.0, "max_completion_tokens": max_tokens}),
        output_spec=OutputSpec(stage_location="@DATA/vlm/"),
        job_spec=JobSpec(max_batch_rows=3),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    assert (job.info.rows_done, job.info.rows_failed) == (6, 3)
    out = _outputs(session, "@DATA/vlm/")
    assert list(out.columns) == ["ROW", "messages", "id", "object", "created", "model", "choices", "usage"]
    assert out["ROW"].tolist() == [0, 1, 2]
    assert out["messages"].tolist() == cells[:3]
    for i, want in enumerate(expected):
        row = out.iloc[i]
        assert row["object"] == "chat.completion" and row["id"].startswith("chatcmpl-")
        assert json.loads(row["choices"]) == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": want["content"]},
                "logprobs": None,
                "finish_reason": want["finish_reason"],
            }
        ]
        assert json.loads(row["usage"]) == {
            "prompt_tokens": want["prompt_tokens"],
            "completion_tokens": want["completion_tokens"],
            "total_tokens": want["prompt_tokens"] + want["completion_tokens"],
        }
    assert [w["finish_reason"] for w in expected] == ["length"] * 3
    stage = f"@{embedded_db}.PUBLIC.MEDIA"
    errors = _errors(session, "@DATA/vlm/")
    assert [(e["ROW"], e["ERROR_CODE"]) for e in errors] == [
        (3, "IMAGE_INVALID"),
        (4, "IMAGE_INVALID"),
        (5, "PROMPT_TOO_LONG"),
    ]
    assert errors[0]["ERROR_MESSAGE"].startswith(f"File {stage}/pics/broken.png is not a readable image: ")
    assert errors[1]["ERROR_MESSAGE"].startswith(
        f"The image_url (a data URL (image/png;base64, {len(_data_url(CORRUPT))} characters)) "
        "is not a readable image: "
    )
    long_tokens = len(_prompt(tiny, _as_pipeline_takes(many_images)))
    assert long_tokens > 64
    assert errors[2]["ERROR_MESSAGE"] == (
        f"The prompt is {long_tokens} tokens long (chat template applied with its images), but the model "
        "takes at most 64 tokens, prompt and completion together. Shorten the messages."
    )
    logs = job.get_logs()
    assert "Row failed (IMAGE_INVALID)" in logs
    assert "takes text and image parts; 'video_url' parts are not passed to it." in logs
