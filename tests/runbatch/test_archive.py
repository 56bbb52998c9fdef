"""Model archive members: only files and folders inside the archive's root, on every Python 3.11."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from runbatch.archive import check_member, extract


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    buffer.seek(0)
    return buffer


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        (
            "../evil",
            tarfile.REGTYPE,
            "Model archive member '../evil' would be written outside the archive's folder.",
        ),
        (
            "a/../../evil",
            tarfile.REGTYPE,
            "Model archive member 'a/../../evil' would be written outside the archive's folder.",
        ),
        (
            "/etc/passwd",
            tarfile.REGTYPE,
            "Model archive member '/etc/passwd' would be written outside the archive's folder.",
        ),
        ("link", tarfile.SYMTYPE, "Model archive member 'link' is not a regular file or folder."),
        ("hard", tarfile.LNKTYPE, "Model archive member 'hard' is not a regular file or folder."),
        ("dev", tarfile.CHRTYPE, "Model archive member 'dev' is not a regular file or folder."),
    ],
)
def test_members_that_escape_or_link_are_refused(name: str, kind: bytes, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_member(_info(name, kind, link="/etc/passwd"))
    assert str(exc.value) == message


def test_extract_writes_files_and_folders_only_under_the_target(tmp_path: Path) -> None:
    executable = _info("./model/run.sh")
    executable.mode = 0o4755
    archive = _tar(
        (_info("model", tarfile.DIRTYPE), b""),
        (_info("model/a/../b.txt"), b"bee"),
        (executable, b"#!/bin/sh"),
    )
    with tarfile.open(fileobj=archive, mode="r:") as tar:
        extract(tar, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "model",
        "model/b.txt",
        "model/run.sh",
    ]
    assert (tmp_path / "model/b.txt").read_bytes() == b"bee"
    assert (tmp_path / "model/run.sh").stat().st_mode & 0o7777 == 0o644  # no setuid, no exec bits
