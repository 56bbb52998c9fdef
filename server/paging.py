"""Opaque page tokens for keyset pagination on (created_at, id), newest first.

A token names the last row of a page, not a position: rows created while a client pages land
before its cursor and never shift or repeat later pages (an offset would). It also carries a
digest of the list's filters, so a token is refused with other filters than it was made for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runbatch.errors import InvalidArgumentError

__all__ = ["PageCursor", "decode_page_token", "encode_page_token", "filters_digest"]


@dataclass(frozen=True)
class PageCursor:
    """The last row of the previous page: the next page starts strictly after it."""

    created_at: datetime
    id: uuid.UUID


def filters_digest(filters: dict[str, Any]) -> str:
    text = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_page_token(cursor: PageCursor, digest: str) -> str:
    raw = json.dumps(
        {"c": cursor.created_at.isoformat(), "i": cursor.id.hex, "f": digest}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def decode_page_token(token: str, digest: str) -> PageCursor:
    bad = InvalidArgumentError(
        "page_token is not a token this server issued; pass the next_page_token of the previous page unchanged, "
        "or leave page_token out for the first page."
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = PageCursor(created_at=datetime.fromisoformat(raw["c"]), id=uuid.UUID(hex=raw["i"]))
        made_for = str(raw["f"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise bad from None
    if cursor.created_at.tzinfo is None:
        raise bad
    if made_for != digest:
        raise InvalidArgumentError(
            "page_token belongs to a listing with other filters; send the same filters as for the first page, "
            "or leave page_token out to start over."
        )
    return cursor
