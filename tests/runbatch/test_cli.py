"""The `runbatch` command on an install without the server's dependencies (a worker image)."""

from __future__ import annotations

import subprocess
import sys

# alembic (and so the server's commands) made unimportable, as on `pip install 'runbatch[worker]'`.
_WITHOUT_SERVER = "import sys; sys.modules['alembic'] = None; from runbatch.cli import main; main()"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_SERVER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_server_commands_say_what_to_install() -> None:
    result = _run("server", "--port", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "`runbatch server` is not installed here (missing module alembic); install it with: "
        "pip install 'runbatch[server]'"
    )


def test_worker_commands_still_work() -> None:
    result = _run("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "Run shards of the given compute pools" in result.stdout
