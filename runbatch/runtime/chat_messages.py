"""OpenAI chat messages whose media parts name files on stages, resolved when the row is read.

A ``messages`` cell (JSON text, or a list of message dicts) may name files on stages in its
content parts::

    {"type": "image_url", "image_url": {"url": "@db.schema.stage/cats/cat.png"}}
    {"type": "video_url", "video_url": {"url": "@db.schema.stage/clips/kitchen.mp4"}}
    {"type": "input_audio", "input_audio": {"data": "@db.schema.stage/audio/hello.wav", "format": "wav"}}

Each such file is read through ``StageFiles`` (the same stages, path checks and retries as file
columns) on the fetch pool, ahead of the model, and replaced by what every engine takes: a
``data:<mime>;base64,...`` URL for images and videos, and base64 data with its format for audio
(OpenAI's ``input_audio``). Images and audio are checked on the way, so a missing or corrupt
file fails its row alone (an error row) instead of the engine's whole batch. ``data:`` URLs and
http(s) URLs are left as they are: the engine takes them or refuses them.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable
from typing import Any

from runbatch.ml.model.batch import FileEncoding
from runbatch.runtime.stage_files import RowError, StageFiles, encode_file
from runbatch.stage.paths import StagePath

__all__ = [
    "AUDIO_INVALID",
    "IMAGE_INVALID",
    "MESSAGES_INVALID",
    "parse_messages",
    "plain",
    "resolve_messages",
]

IMAGE_INVALID = "IMAGE_INVALID"
AUDIO_INVALID = "AUDIO_INVALID"
MESSAGES_INVALID = "MESSAGES_INVALID"

# Audio containers libsndfile decodes; others (m4a, ...) go to the engine unchecked.
_CHECKED_AUDIO = frozenset({"wav", "flac", "ogg", "mp3"})


def plain(value: Any) -> Any:
    """Arrow/numpy nested values as plain Python (lists, dicts, None for NaN)."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def parse_messages(value: Any) -> list[dict[str, Any]]:
    """A cell of a messages column as a list of message dicts; a row error when it is not one."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(MESSAGES_INVALID, f"The messages are not valid JSON: {exc}.") from None
    value = plain(value)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise RowError(
            MESSAGES_INVALID,
            "The messages must be a JSON list of OpenAI chat messages such as "
            '[{"role": "user", "content": "..."}], got ' + type(value).__name__ + ".",
        )
    return value


def _check_image(data: bytes, path: StagePath) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RowError(IMAGE_INVALID, f"File {path} is not a readable image: {exc}") from None


def _audio_format(path: StagePath, given: Any) -> str:
    if isinstance(given, str) and given:
        return given.lower()
    suffix = path.path.rsplit(".", 1)[-1].lower() if "." in path.path else ""
    return suffix or "wav"


def _check_audio(data: bytes, path: StagePath, fmt: str) -> None:
    if fmt not in _CHECKED_AUDIO:
        return
    import soundfile  # type: ignore[import-untyped]

    try:
        soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise RowError(AUDIO_INVALID, f"File {path} is not readable {fmt} audio: {exc}") from None


def resolve_messages(
    value: Any, files: StageFiles, on_bytes: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """The messages of one cell with every stage path in their media parts replaced by the file's data.

    ``on_bytes`` is told the size of each file's encoded data (the prefetch budget counts it).
    """
    messages = parse_messages(value)
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind not in ("image_url", "video_url", "input_audio"):
                continue
            holder = part.get(kind)
            if not isinstance(holder, dict):
                continue
            if kind in ("image_url", "video_url"):
                url = holder.get("url")
                if not (isinstance(url, str) and url.lstrip().startswith("@")):
                    continue
                data, path = files.read(url.strip())
                if kind == "image_url":
                    _check_image(data, path)
                encoded = encode_file(data, FileEncoding.BASE64_DATA_URL, path)
                holder["url"] = encoded
            elif kind == "input_audio":
                source = holder.get("data")
                if not (isinstance(source, str) and source.lstrip().startswith("@")):
                    continue
                data, path = files.read(source.strip())
                fmt = _audio_format(path, holder.get("format"))
                _check_audio(data, path, fmt)
                encoded = base64.b64encode(data).decode("ascii")
                holder["data"], holder["format"] = encoded, fmt
            if on_bytes is not None:
                on_bytes(len(encoded))
    return messages
