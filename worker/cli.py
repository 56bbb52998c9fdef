"""``runbatch worker``: serve compute pools from a Celery broker, on any host that reaches the control plane."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from runbatch.client import ControlPlaneClient
from runbatch.log_format import configure_logging
from worker.celery_app import create_worker_app
from worker.executors import create_executor
from worker.registration import Registration, host_capacity
from worker.services import ServiceRunner
from worker.settings import WorkerSettings
from worker.shard_runner import ShardRunner

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    images = typer.Typer(help="Runtime images of the docker executor.", no_args_is_help=True)
    app.add_typer(images, name="images")

    @images.command("build")
    def build(
        kind: str = typer.Argument("cpu", help="cpu or gpu."),
        force: bool = typer.Option(False, help="Build again even when an image of the same content exists."),
        base_image: str = typer.Option(
            None, help="Base image with Python 3.11 (default: python:3.11-slim, else a Debian bootstrap)."
        ),
        source: str = typer.Option(
            None, help="Source checkout to build from (default: found from the package)."
        ),
    ) -> None:
        """Build a runtime image, tagged runbatch-runtime:<kind>-<content hash>, and print its tag."""
        import docker

        from worker.images import ImageBuilder, ImageBuildError

        builder = ImageBuilder(
            docker.from_env(timeout=600),
            source=Path(source) if source else None,
            base_image=base_image,
            echo=typer.echo,
        )
        try:
            typer.echo(builder.runtime_image(kind, force=force))
        except ImageBuildError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc

    @app.command()
    def worker(
        pools: str = typer.Option(None, help="Comma-separated compute pools (default RUNBATCH_POOLS)."),
        concurrency: int = typer.Option(None, help="Shards run at once (default RUNBATCH_SLOTS)."),
    ) -> None:
        """Run shards of the given compute pools; needs RUNBATCH_API_URL, RUNBATCH_TOKEN, RUNBATCH_BROKER_URL."""
        settings = WorkerSettings()
        if concurrency is not None:
            settings.slots = concurrency
        missing = [name for name in ("api_url", "token", "broker_url") if getattr(settings, name) is None]
        if missing:
            raise typer.BadParameter(
                "set " + ", ".join(f"RUNBATCH_{m.upper()}" for m in missing) + " to run a standalone worker"
            )
        assert settings.api_url is not None and settings.token is not None
        configure_logging("INFO", settings.log_format)
        served = [p.strip().upper() for p in (pools or settings.pools).split(",") if p.strip()]
        client = ControlPlaneClient(settings.api_url, settings.token.get_secret_value())
        capacity = host_capacity(settings, served)
        home = Path(os.environ.get("RUNBATCH_HOME") or Path.home() / ".runbatch")
        cache = settings.cache_dir or home / "cache"
        executor = create_executor(settings, worker_name=capacity.name, cache_dir=cache, gpus=capacity.gpus)
        registration = Registration(
            client, capacity, settings.worker_heartbeat_interval_s, alive_file=home / "worker.alive"
        )
        runner = ShardRunner(client, executor, settings, capacity.name, {"RUNBATCH_CACHE_DIR": str(cache)})
        services = ServiceRunner(
            client, lambda: executor, capacity.name, cache / "service-volumes", settings.service_host
        )
        celery = create_worker_app(settings, runner, services)
        registration.start()
        say = logging.getLogger("runbatch.worker").info if settings.log_format == "json" else typer.echo
        say(f"runbatch worker {capacity.name} serving {', '.join(served)} with {settings.slots} slots")
        try:
            celery.Worker(
                queues=served,
                concurrency=settings.slots,
                pool="threads",
                hostname=f"runbatch@{capacity.name}",
                without_gossip=True,
                without_mingle=True,
                loglevel="INFO",
                quiet=settings.log_format == "json",  # no startup banner among JSON lines
            ).start()
        finally:
            registration.stop()
            runner.stop()
            services.stop()
            executor.close()
