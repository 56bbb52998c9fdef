from __future__ import annotations

import pytest

from runbatch.errors import StagePathError
from runbatch.stage.paths import StagePath, normalize_key, parse_stage_path, stage_root_key


def test_parse_fully_qualified_and_relative() -> None:
    assert parse_stage_path("@db.sch.stg/a/b/") == StagePath("DB", "SCH", "STG", "a/b")
    assert parse_stage_path("@stg", database="D", schema="S") == StagePath("D", "S", "STG", "")
    assert parse_stage_path("@other.stg/x", database="D") == StagePath("D", "OTHER", "STG", "x")
    assert parse_stage_path('@"my db".s."St/x"/f.csv') == StagePath("my db", "S", "St/x", "f.csv")
    assert str(parse_stage_path("@d.s.stg/a//./b")) == "@D.S.STG/a/b"
    assert parse_stage_path("@d.s.stg").as_dir() == "@D.S.STG/"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stage/x", "is not a stage path"),
        ("@~/x", "user or table stage"),
        ("@%t/x", "user or table stage"),
        ("@d.s.st/../x", "contains '..'"),
        ("@d.s.st/a/../../x", "contains '..'"),
        ("@d.s.st/a\\b", "backslash"),
        ("@d.s.st/a\x00b", "control character"),
        ("@stg/x", "no current database"),
        ("@/x", "does not name a stage"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(StagePathError, match=message):
        parse_stage_path(text)


def test_keys_cannot_leave_their_folder() -> None:
    assert normalize_key("/a//b/./c/") == "a/b/c"
    with pytest.raises(StagePathError):
        normalize_key("a/../b")
    assert stage_root_key("..", ".", "a/b") == "stages/%2E%2E/%2E/a%2Fb"


def test_contains() -> None:
    out = StagePath("D", "S", "ST", "out")
    assert out.contains(StagePath("D", "S", "ST", "out/x"))
    assert not out.contains(StagePath("D", "S", "ST", "outer"))
    assert StagePath("D", "S", "ST", "").contains(out)
