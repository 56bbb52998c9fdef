"""Request bodies streamed into storage: a file appears whole, or not at all."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runbatch.errors import InvalidArgumentError
from runbatch.stage.storage import Storage

__all__ = ["receive_upload"]


class _UploadAborted(Exception):
    """The client's body ended early: storage must discard the partial file."""


class _Abort:
    pass


_ABORTED = _Abort()


async def receive_upload(request: Request, storage: Storage, key: str, label: str) -> None:
    """Write the request body to ``key``; an upload cut short stores nothing."""
    # The storage write is blocking; a bounded queue hands chunks to a thread so the event
    # loop keeps reading the socket and memory stays at a few chunks whatever the file size.
    # None ends the file; _ABORTED makes the writer raise, so storage discards what it has
    # (a temporary file, a multipart upload) instead of publishing a truncated file.
    chunks: queue.Queue[bytes | _Abort | None] = queue.Queue(maxsize=8)
    result: dict[str, BaseException | int] = {}

    def _drain() -> Iterator[bytes]:
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, _Abort):
                raise _UploadAborted
            yield chunk

    def _write() -> None:
        try:
            result["size"] = storage.write_stream(key, _drain())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the request below
            result["error"] = exc
            if not isinstance(exc, _UploadAborted):
                while isinstance(chunks.get(), bytes):  # unblock the producer
                    pass

    writer = threading.Thread(target=_write, name="stage-upload", daemon=True)
    writer.start()
    declared = request.headers.get("content-length")
    received = 0
    whole = False
    try:
        async for chunk in request.stream():
            if chunk:
                received += len(chunk)
                await run_in_threadpool(chunks.put, chunk)
        whole = declared is None or int(declared) == received
    finally:
        await run_in_threadpool(chunks.put, None if whole else _ABORTED)
        await run_in_threadpool(writer.join)
    error = result.get("error")
    if isinstance(error, _UploadAborted):
        raise InvalidArgumentError(
            f"The upload of {label!r} ended after {received} of {declared} bytes; nothing was stored. Upload it again."
        )
    if isinstance(error, BaseException):
        raise error
