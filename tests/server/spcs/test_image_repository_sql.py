"""Parsing the image repository statements (executed in tests/e2e/test_image_repositories.py and
tests/server/api/test_image_repository_routes.py)."""

from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError
from server.spcs.image_repository_sql import (
    CreateRepository,
    DropRepository,
    ShowImages,
    ShowRepositories,
    is_image_repository_statement,
    parse,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE IMAGE REPOSITORY images", CreateRepository(["IMAGES"], False, False, None)),
        (
            "create or replace image repository db.s.\"Mixed\" COMMENT = 'mine' ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE');",
            CreateRepository(["DB", "S", "Mixed"], True, False, "mine"),
        ),
        ("CREATE IMAGE REPOSITORY IF NOT EXISTS r", CreateRepository(["R"], False, True, None)),
        ("DROP IMAGE REPOSITORY IF EXISTS s.r", DropRepository(["S", "R"], True)),
        ("SHOW IMAGE REPOSITORIES", ShowRepositories(None, None)),
        ("SHOW IMAGE REPOSITORIES LIKE 'r%' IN ACCOUNT", ShowRepositories("r%", [])),
        ("SHOW IMAGE REPOSITORIES IN DATABASE db", ShowRepositories(None, ["DB"])),
        ("SHOW IMAGE REPOSITORIES IN SCHEMA s", ShowRepositories(None, ["", "S"])),
        ("SHOW IMAGE REPOSITORIES IN db.s", ShowRepositories(None, ["DB", "S"])),
        ("SHOW IMAGES IN IMAGE REPOSITORY db.s.r", ShowImages(["DB", "S", "R"])),
    ],
)
def test_statements_parse(sql: str, expected: object) -> None:
    assert is_image_repository_statement(sql)
    assert parse(sql) == expected


def test_other_statements_are_not_image_repository_statements() -> None:
    assert not is_image_repository_statement("CREATE STAGE images")
    assert not is_image_repository_statement("SHOW IMAGES")
    assert not is_image_repository_statement("SELECT 'CREATE IMAGE REPOSITORY x'")


def test_unknown_options_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="expected COMMENT = '...' or ENCRYPTION = \\(...\\)"):
        parse("CREATE IMAGE REPOSITORY r TAG = 1")
