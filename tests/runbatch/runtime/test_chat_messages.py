"""Stage paths in OpenAI chat messages' media parts, resolved into the data every engine takes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from runbatch.runtime.chat_messages import parse_messages, resolve_messages
from runbatch.runtime.stage_files import MountedStage, RowError, StageFiles
from runbatch.stage.storage import open_storage
from tests.hf_models import png_bytes, wav_bytes


@pytest.fixture
def files(tmp_path: Path) -> StageFiles:
    storage = open_storage(f"file://{tmp_path}")
    storage.write_bytes("stages/MEDIA/pics/cat.png", png_bytes(1))
    storage.write_bytes("stages/MEDIA/pics/broken.png", b"not a png at all")
    storage.write_bytes("stages/MEDIA/audio/a.wav", wav_bytes(2))
    storage.write_bytes("stages/MEDIA/audio/broken.wav", b"RIFF....WAVEjunk")
    storage.write_bytes("stages/MEDIA/audio/clip.m4a", b"\x00\x00\x00\x20ftypM4A ")
    storage.write_bytes("stages/MEDIA/clips/v.mp4", b"\x00\x00\x00\x18ftypmp42")
    return StageFiles(
        {("DB", "S", "MEDIA"): MountedStage(storage, "stages/MEDIA")},
        default_database="DB",
        default_schema="S",
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_each_media_part_is_resolved_and_the_rest_left_alone(files: StageFiles) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "@MEDIA/pics/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "video_url", "video_url": {"url": " @DB.S.MEDIA/clips/v.mp4"}},
                {"type": "input_audio", "input_audio": {"data": "@MEDIA/audio/a.wav", "format": None}},
                {"type": "input_audio", "input_audio": {"data": "@MEDIA/audio/clip.m4a", "format": "M4A"}},
                {"type": "input_audio", "input_audio": {"data": _b64(b"raw"), "format": "mp3"}},
            ],
        },
    ]
    sizes: list[int] = []
    resolved = resolve_messages(json.dumps(messages), files, sizes.append)
    parts: list[dict[str, Any]] = resolved[1]["content"]
    assert resolved[0] == {"role": "system", "content": "be brief"}
    assert parts[0] == {"type": "text", "text": "look"}
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + _b64(png_bytes(1)), "detail": "low"},
    }
    assert parts[2]["image_url"]["url"] == "data:image/png;base64,AAAA"
    assert parts[3]["image_url"]["url"] == "https://example.com/cat.png"
    assert parts[4]["video_url"]["url"] == "data:video/mp4;base64," + _b64(b"\x00\x00\x00\x18ftypmp42")
    assert parts[5]["input_audio"] == {"data": _b64(wav_bytes(2)), "format": "wav"}
    assert parts[6]["input_audio"] == {"data": _b64(b"\x00\x00\x00\x20ftypM4A "), "format": "m4a"}
    assert parts[7]["input_audio"] == {"data": _b64(b"raw"), "format": "mp3"}
    assert sizes == [
        len(parts[1]["image_url"]["url"]),
        len(parts[4]["video_url"]["url"]),
        len(parts[5]["input_audio"]["data"]),
        len(parts[6]["input_audio"]["data"]),
    ]


@pytest.mark.parametrize(
    ("part", "code", "message"),
    [
        (
            {"type": "image_url", "image_url": {"url": "@MEDIA/pics/none.png"}},
            "FILE_NOT_FOUND",
            "File @DB.S.MEDIA/pics/none.png does not exist.",
        ),
        (
            {"type": "image_url", "image_url": {"url": "@OTHER/pics/cat.png"}},
            "STAGE_NOT_FOUND",
            "Stage 'DB.S.OTHER' does not exist or not authorized.",
        ),
        (
            {"type": "image_url", "image_url": {"url": "@MEDIA/../secrets.png"}},
            "STAGE_PATH_INVALID",
            None,
        ),
        ({"type": "image_url", "image_url": {"url": "@MEDIA/pics/broken.png"}}, "IMAGE_INVALID", None),
        ({"type": "input_audio", "input_audio": {"data": "@MEDIA/audio/broken.wav"}}, "AUDIO_INVALID", None),
    ],
)
def test_a_part_that_cannot_be_read_fails_its_row(
    files: StageFiles, part: dict[str, Any], code: str, message: str | None
) -> None:
    with pytest.raises(RowError) as err:
        resolve_messages([{"role": "user", "content": [part]}], files)
    assert err.value.code == code
    if message is not None:
        assert err.value.message == message
    elif code == "IMAGE_INVALID":
        assert err.value.message.startswith("File @DB.S.MEDIA/pics/broken.png is not a readable image: ")
    elif code == "AUDIO_INVALID":
        assert err.value.message.startswith("File @DB.S.MEDIA/audio/broken.wav is not readable wav audio: ")


def test_cells_that_are_not_messages_are_row_errors() -> None:
    assert parse_messages(None) == []
    assert parse_messages('[{"role": "user", "content": "hi"}]') == [{"role": "user", "content": "hi"}]
    with pytest.raises(RowError) as err:
        parse_messages("{nope")
    assert (err.value.code, err.value.message) == (
        "MESSAGES_INVALID",
        "The messages are not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1).",
    )
    with pytest.raises(RowError) as err:
        parse_messages('{"role": "user"}')
    assert err.value.message == (
        'The messages must be a JSON list of OpenAI chat messages such as [{"role": "user", "content": "..."}], '
        "got dict."
    )
