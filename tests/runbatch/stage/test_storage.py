from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbatch.errors import InvalidArgumentError, NotFoundError, StagePathError
from runbatch.stage.storage import open_storage


def test_write_list_move_delete(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    storage.write_bytes("a/b/one.txt", b"1")
    storage.write_stream("a/two.txt", iter([b"2", b"2"]))
    storage.write_bytes("ab.txt", b"3")
    assert [e.key for e in storage.list("a/")] == ["a/b/one.txt", "a/two.txt"]
    assert [e.key for e in storage.list("a")] == ["a/b/one.txt", "a/two.txt", "ab.txt"]
    assert [(e.key, e.size) for e in storage.list("a/t")] == [("a/two.txt", 2)]
    entry = storage.list("ab.txt")[0]
    assert storage.md5(entry) == "eccbc87e4b5ce2fe28308fd9f2a7baf3"
    storage.move("a/two.txt", "c/two.txt")
    assert storage.read_bytes("c/two.txt") == b"22"
    assert storage.delete_prefix("a/") == 1
    assert not (tmp_path / "a").exists()
    with pytest.raises(NotFoundError):
        storage.read_bytes("a/b/one.txt")


def test_symlinks_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key").write_text("s3cr3t")
    storage = open_storage(f"file://{root}")
    os.symlink(outside, root / "link")
    os.symlink(outside / "key", root / "filelink")
    with pytest.raises(StagePathError, match="symbolic link"):
        storage.read_bytes("link/key")
    with pytest.raises(StagePathError, match="symbolic link"):
        storage.write_bytes("link/new", b"x")
    assert storage.list("") == []  # links are not listed
    with pytest.raises(StagePathError, match="symbolic link"):
        storage.read_bytes("filelink")


def test_only_absolute_local_urls(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="absolute path"):
        open_storage("file://relative/dir")
    with pytest.raises(InvalidArgumentError, match="scheme 'ftp'"):
        open_storage("ftp://host/x")
