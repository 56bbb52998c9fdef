"""``python -m runbatch.runtime.requirements FILE``: install what a model needs and the image lacks.

Derived model images run this on top of a runtime image: requirements the image already
satisfies (the framework pins every handler records, e.g. ``torch==2.13.0`` against an
installed ``2.13.0+cpu``) are skipped, so a model's environment never replaces the image's
CPU or CUDA builds with different ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

__all__ = ["as_pip_requirement", "main", "unsatisfied"]

_CONDA_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)=([^=<>!~].*)$")


def as_pip_requirement(text: str) -> str:
    """A conda dependency (``channel::name==1.2``) as the pip requirement of the same name."""
    spec = text.rpartition("::")[2].strip()
    single = _CONDA_PIN.match(spec)
    # conda's single '=' pins a version (prefix); pip spells it '=='.
    return f"{single.group(1)}=={single.group(2)}" if single else spec


def unsatisfied(requirements: Iterable[str]) -> list[str]:
    """The requirements this environment does not satisfy (markers that do not apply are skipped)."""
    missing = []
    for line in requirements:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ValueError(f"Invalid requirement {text!r} in the model's environment: {exc}") from exc
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(text)
    return missing


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m runbatch.runtime.requirements REQUIREMENTS_FILE", file=sys.stderr)  # noqa: T201
        return 2
    with open(args[0]) as f:
        missing = unsatisfied(f)
    if not missing:
        print("Every requirement is already installed.")  # noqa: T201
        return 0
    print(f"Installing {' '.join(missing)}")  # noqa: T201
    return subprocess.call([sys.executable, "-m", "pip", "install", *missing])


if __name__ == "__main__":
    raise SystemExit(main())
