"""``runbatch worker``: serve compute pools from a Celery broker, on any host that reaches the control plane."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from runbatch.client import ControlPlaneClient
from runbatch.commands.connection import Token, Url, control_plane
from runbatch.identifiers import resolve_identifier
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

    @images.command("push")
    def push(
        kind: str = typer.Argument("cpu", help="cpu or gpu."),
        repository: str = typer.Option(
            ...,
            help="Image repository to push to: /<db>/<schema>/<repository>, or its repository_url "
            "(<registry host>/<db>/<schema>/<repository>).",
        ),
        image: str = typer.Option(
            None, help="Local image to push as the runtime (default: the one `runbatch images build` makes)."
        ),
        base_image: str = typer.Option(None, help="Base image of a runtime image built first."),
        source: str = typer.Option(
            None, help="Source checkout to build from (default: found from the package)."
        ),
        url: Url = None,
        token: Token = None,
    ) -> None:
        """Push this runbatch's runtime image to an image repository of the cluster's registry, where
        workers with RUNBATCH_RUNTIME_REPOSITORY pull it; prints the reference pushed."""
        import docker

        from worker.images import KINDS, ImageBuilder, ImageBuildError, RegistryRepository

        if kind not in KINDS:
            raise typer.BadParameter(f"choose one of {', '.join(KINDS)}, not {kind!r}", param_hint="KIND")
        with control_plane(url, token) as client:
            try:
                if repository.startswith("/"):
                    parts = [p for p in repository.split("/") if p]
                    if len(parts) != 3:
                        raise ImageBuildError(
                            f"--repository {repository!r}: expected /<db>/<schema>/<repository>, e.g. /ml/public/runtime."
                        )
                    target = RegistryRepository(
                        client.image_repository_url(*(resolve_identifier(p) for p in parts))
                    )
                else:
                    target = RegistryRepository(repository)
                engine = docker.from_env(timeout=600)
                builder = ImageBuilder(
                    engine, source=Path(source) if source else None, base_image=base_image, echo=typer.echo
                )
                local = image or builder.runtime_image(kind)
                reference = target.runtime_reference(kind)
                name, _, tag = reference.rpartition(":")
                engine.images.get(local).tag(name, tag)
                typer.echo(f"Pushing {local} as {reference} ...")
                assert token is not None  # control_plane() checked
                # User name and password as `docker login` takes them: the engine asks the control plane
                # for registry tokens itself, and again when a long push outlives one.
                for chunk in engine.images.push(
                    name,
                    tag,
                    stream=True,
                    decode=True,
                    auth_config={"username": "runbatch", "password": token},
                ):
                    if "error" in chunk:
                        raise ImageBuildError(f"Pushing {reference} failed: {chunk['error'].strip()}")
            except ImageBuildError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(1) from exc
            except docker.errors.APIError as exc:
                typer.echo(f"Pushing failed: {exc.explanation or exc}", err=True)
                raise typer.Exit(1) from exc
        typer.echo(reference)

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
