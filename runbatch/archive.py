"""Model archives (uncompressed tar): the member rules every reader applies.

Only regular files and folders with relative paths that stay inside the archive's root are
accepted, which is what tarfile's "data" filter enforces for these archives. The rules are
written out here because Debian's Python 3.11.2, the interpreter of runtime images built
without a registry, predates tarfile's filters.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
from pathlib import Path

__all__ = ["check_member", "extract"]


def check_member(member: tarfile.TarInfo) -> str:
    """The member's path relative to the archive root; ValueError names what is wrong with it."""
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"Model archive member {member.name!r} is not a regular file or folder.")
    name = member.name.removeprefix("./")
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../") or "\\" in name:
        raise ValueError(
            f"Model archive member {member.name!r} would be written outside the archive's folder."
        )
    return normal


def extract(tar: tarfile.TarFile, target: Path) -> None:
    """Every member of ``tar`` under ``target`` (files with mode 0644, folders 0755), checked first."""
    for member in tar:
        rel = check_member(member)
        path = target / rel
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        with source, open(path, "wb") as sink:
            shutil.copyfileobj(source, sink)
        path.chmod(0o644)
