"""scripts/registry against stand-ins for docker and curl: what it runs and what it prints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What other hosts are told to name a registry listening on every interface by.
HOST = subprocess.run(["hostname", "-f"], capture_output=True, text=True, check=True).stdout.strip()


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    # docker: the image exists, and each call is recorded one argument a line; curl: the registry answers 401.
    (bin_dir / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" "--" >> {calls}\n')
    (bin_dir / "curl").write_text("#!/bin/sh\nprintf 401\n")
    for tool in ("docker", "curl"):
        (bin_dir / tool).chmod(0o755)
    started = subprocess.run(
        [str(ROOT / "scripts" / "registry"), "start", "--home", str(tmp_path / "home"), *args],
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    runs = calls.read_text().split("--\n")
    run = next(r for r in runs if r.startswith("run\n"))
    return started, run.splitlines()


@pytest.mark.parametrize(
    ("args", "listen", "printed"),
    [
        ([], "127.0.0.1:5000", "127.0.0.1:5000"),
        (["--addr", "0.0.0.0", "--port", "5055"], "0.0.0.0:5055", f"{HOST}:5055"),
        (["--addr", "10.1.2.3"], "10.1.2.3:5000", "10.1.2.3:5000"),
    ],
)
def test_the_registry_listens_where_addr_says(
    tmp_path: Path, args: list[str], listen: str, printed: str
) -> None:
    started, run = _start(tmp_path, "--realm", "http://cp:8080/api/v1/registry/token", *args)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == printed
    assert f"REGISTRY_HTTP_ADDR={listen}" in run
    assert "REGISTRY_AUTH_TOKEN_REALM=http://cp:8080/api/v1/registry/token" in run
    # Only the certificate of the control plane's home is mounted, never its key.
    assert f"{tmp_path}/home/registry/token.crt:/etc/docker/registry/token.crt:ro" in run
