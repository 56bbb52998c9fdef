"""Page tokens: they round-trip, refuse tampering, and only continue the listing they came from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from runbatch.errors import InvalidArgumentError
from server.paging import PageCursor, decode_page_token, encode_page_token, filters_digest

CURSOR = PageCursor(
    created_at=datetime(2026, 11, 22, 5, 0, 0, 123456, tzinfo=UTC),
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
)


def test_a_token_round_trips_exactly() -> None:
    digest = filters_digest({"status": ["DONE"], "pool": None})
    token = encode_page_token(CURSOR, digest)
    assert "=" not in token and "/" not in token and "+" not in token  # safe in a query string
    assert decode_page_token(token, digest) == CURSOR


def test_filters_digest_is_order_independent_and_value_sensitive() -> None:
    assert filters_digest({"a": 1, "b": "x"}) == filters_digest({"b": "x", "a": 1})
    assert filters_digest({"a": 1}) != filters_digest({"a": 2})


@pytest.mark.parametrize(
    "token", ["", "garbage", "bm90IGpzb24", "W10", "eyJjIjoiMjAyNi0xMS0yMlQwNTowMDowMCJ9"]
)
def test_a_token_the_server_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgumentError, match="^page_token is not a token this server issued"):
        decode_page_token(token, filters_digest({}))


def test_a_token_for_other_filters_is_refused() -> None:
    token = encode_page_token(CURSOR, filters_digest({"status": ["DONE"]}))
    with pytest.raises(InvalidArgumentError, match="^page_token belongs to a listing with other filters"):
        decode_page_token(token, filters_digest({"status": ["FAILED"]}))
