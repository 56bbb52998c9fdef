"""The dashboard ships inside the package: a built wheel holds every asset, and nothing loads from elsewhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from server.dashboard import STATIC_DIR

ROOT = Path(__file__).resolve().parents[3]


def _assets() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in STATIC_DIR.rglob("*") if p.is_file())


def test_a_built_wheel_ships_every_dashboard_asset(tmp_path: Path) -> None:
    # A copy of the sources: building in the checkout would write build/ next to others' work.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("runbatch", "server", "worker", "migrations"):
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("runbatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = _assets()
    assert "server/dashboard/static/index.html" in assets
    assert "server/dashboard/static/vendor/uPlot.esm.js" in assets
    assert "server/dashboard/static/vendor/uPlot.LICENSE" in assets
    assert [a for a in assets if a not in names] == []


def test_assets_load_nothing_from_other_hosts() -> None:
    """The browser may have no internet: no CDN, no absolute URL in any script, style or page."""
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".html", ".js", ".css") or path.parent.name == "vendor":
            continue
        text = path.read_text()
        assert re.findall(r"""(?:src|href)\s*=\s*["']https?://""", text) == [], path
        assert re.findall(r"""(?:import[^"']*|url\()["']?(?:https?:)?//""", text) == [], path
