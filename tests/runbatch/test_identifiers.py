from __future__ import annotations

import pytest

from runbatch.identifiers import (
    format_identifier,
    parse_qualified_name,
    resolve_identifier,
    split_identifiers,
)


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("abc", "ABC"),
        ("Abc_1$", "ABC_1$"),
        ('"abc"', "abc"),
        ('"a""b"', 'a"b'),
        ('"a.b"', "a.b"),
        ("_x", "_X"),
    ],
)
def test_resolve(raw: str, resolved: str) -> None:
    assert resolve_identifier(raw) == resolved


@pytest.mark.parametrize("bad", ["1abc", "a b", "a-b", '"', '""', ""])
def test_resolve_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        resolve_identifier(bad)


def test_format_round_trips() -> None:
    for resolved in ["ABC", "abc", "My Model", 'q"uote', "A.B"]:
        assert resolve_identifier(format_identifier(resolved)) == resolved
    assert format_identifier("ABC") == "ABC" and format_identifier("abc") == '"abc"'


def test_qualified_names() -> None:
    assert split_identifiers('a."b.c".d') == ["a", '"b.c"', "d"]
    assert parse_qualified_name('db."My Schema".m') == ["DB", "My Schema", "M"]
    assert parse_qualified_name("m") == ["M"]
    with pytest.raises(ValueError, match="cannot be parsed"):
        parse_qualified_name("a.b.c.d")
    with pytest.raises(ValueError, match="cannot be parsed"):
        parse_qualified_name("a..b")
