"""Screenshots of every dashboard page for docs/dashboard.md and the README.

    python bench/screenshots.py [--out docs/screenshots]

Starts a `runbatch server` in a temporary home, fills it as the browser tests do (tests/e2e/test_dashboard.py:
a logged sklearn model with metrics and a model monitor, a finished job, a DAG with a run), starts a slow job, and
photographs each page in headless Chromium (Debian's /usr/bin/chromium, see scripts/browser) while that
job runs. Not part of the test suite: screenshots of live jobs differ from run to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's service starters and scene

from tests.conftest import TEST_ENV  # noqa: E402
from tests.e2e.models import SlowDoubler  # noqa: E402
from tests.e2e.test_dashboard import CHROMIUM, add_monitor, build_scene, sign_in, slow_job  # noqa: E402
from tests.services import ServerProcess  # noqa: E402


def shoot(page: Page, out: Path, name: str, route: str, ready: str) -> None:
    page.goto(route)
    expect(page.locator(ready).first).to_be_visible(timeout=30_000)
    time.sleep(1.5)  # two polls: rates and the chart have samples
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(f"{out / f'{name}.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.update(TEST_ENV)
    with tempfile.TemporaryDirectory() as home:
        server = ServerProcess(Path(home))
        try:
            scene = build_scene(server.session(), "ANALYTICS")
            add_monitor(scene)
            running = slow_job(scene, SlowDoubler, rows=20_000, batch=100)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                context = browser.new_context(
                    base_url=server.url, viewport={"width": 1440, "height": 900}, device_scale_factor=1
                )
                page = context.new_page()
                page.goto("/")
                expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
                page.screenshot(path=str(args.out / "signin.png"))
                sign_in(page, server.token)
                deadline = time.monotonic() + 120
                while running.info.rows_done == 0:
                    assert time.monotonic() < deadline, running.get_logs()
                    time.sleep(0.2)
                shoot(page, args.out, "jobs", "/#/jobs", f'tr[data-job="{running.id}"]')
                page.goto(f"/#/jobs/ANALYTICS/PUBLIC/{running.name}")
                time.sleep(8)  # the throughput chart fills with samples
                shoot(page, args.out, "job", f"/#/jobs/ANALYTICS/PUBLIC/{running.name}", "canvas")
                shoot(
                    page,
                    args.out,
                    "job-done",
                    f"/#/jobs/ANALYTICS/PUBLIC/{scene.job.name}",
                    "[data-testid=success-marker]",
                )
                shoot(page, args.out, "models", "/#/models", "tr[data-model]")
                shoot(
                    page,
                    args.out,
                    "model",
                    "/#/models/ANALYTICS/PUBLIC/CHURN_CLASSIFIER",
                    "[data-testid=monitor-count] canvas",
                )
                shoot(page, args.out, "pools", "/#/pools", "[data-pool] tbody a")
                shoot(page, args.out, "stages", "/#/stages/ANALYTICS/PUBLIC/DATA/scores/", "tr[data-entry]")
                shoot(page, args.out, "dags", "/#/dags/ANALYTICS/PUBLIC/NIGHTLY_REPORT", "[data-status]")
                running.cancel()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
