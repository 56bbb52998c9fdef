"""compose.yaml and the Dockerfile agree with the code: every variable is a real setting with a
valid value, the services wire together (hosts, ports, credentials, bucket, token), and every
long-running service has a healthcheck and its data a named volume."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic_settings import BaseSettings

from server.settings import ServerSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKER_TARGETS = set(re.findall(r"^FROM \S+ AS (\w+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
# What each image target runs, and so which settings class reads its environment.
SETTINGS: dict[str, type[BaseSettings]] = {"server": ServerSettings, "worker": WorkerSettings}


def _interpolate(value: object) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment, and ``$$`` -> ``$``."""
    text = str(value)
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), text)
    assert "${" not in text, f"unresolved variable in {value!r}"
    return text.replace("$$", "$")


def _env(service: str) -> dict[str, str]:
    return {k: _interpolate(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def test_the_stack_has_every_service() -> None:
    assert sorted(SERVICES) == [
        "migrate",
        "minio",
        "minio-init",
        "postgres",
        "redis",
        "registry",
        "registry-cert",
        "server",
        "worker-cpu",
        "worker-gpu",
    ]
    assert DOCKER_TARGETS == {"source", "server", "worker"}


@pytest.mark.parametrize("service", ["migrate", "server", "worker-cpu", "worker-gpu"])
def test_runbatch_services_set_only_real_settings_with_valid_values(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SERVICES[service]["build"]["target"]
    assert target in DOCKER_TARGETS
    assert SERVICES[service]["build"]["context"] == "."
    settings_class = SETTINGS[target]
    env = _env(service)
    fields = {f"RUNBATCH_{name.upper()}" for name in settings_class.model_fields}
    unknown = sorted(set(env) - fields)
    assert unknown == [], f"{service} sets variables {settings_class.__name__} does not read: {unknown}"
    for key in [k for k in os.environ if k.startswith("RUNBATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings_class()  # every value parses (URLs, numbers, secrets)


def test_the_services_reach_each_other() -> None:
    server, worker = _env("server"), _env("worker-cpu")
    postgres, minio = _env("postgres"), _env("minio")
    database = urlparse(server["RUNBATCH_DATABASE_URL"])
    assert (database.hostname, database.port, database.path) == (
        "postgres",
        5432,
        f"/{postgres['POSTGRES_DB']}",
    )
    assert (database.username, database.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert _env("migrate")["RUNBATCH_DATABASE_URL"] == server["RUNBATCH_DATABASE_URL"]
    assert urlparse(server["RUNBATCH_BROKER_URL"]).hostname == "redis"
    assert worker["RUNBATCH_BROKER_URL"] == server["RUNBATCH_BROKER_URL"]
    assert urlparse(server["RUNBATCH_S3_ENDPOINT_URL"]).hostname == "minio"
    assert (server["RUNBATCH_S3_ACCESS_KEY"], server["RUNBATCH_S3_SECRET_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    bucket = urlparse(server["RUNBATCH_STAGE_URL"]).netloc
    assert f"mc mb --ignore-existing local/{bucket}" in _interpolate(SERVICES["minio-init"]["entrypoint"][-1])
    api = urlparse(worker["RUNBATCH_API_URL"])
    assert (api.hostname, f"{api.port}:{api.port}") == ("server", SERVICES["server"]["ports"][0])
    assert worker["RUNBATCH_TOKEN"] == server["RUNBATCH_ADMIN_TOKEN"]
    assert len(server["RUNBATCH_ADMIN_TOKEN"]) >= 32  # what the server accepts


def test_start_order_waits_for_health_and_migrations() -> None:
    for name, service in SERVICES.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            one_shot = SERVICES[dependency].get("restart") == "no"
            expected = "service_completed_successfully" if one_shot else "service_healthy"
            assert how == {"condition": expected}, f"{name} -> {dependency}"
    assert set(SERVICES["server"]["depends_on"]) == {"migrate", "minio-init", "redis"}
    assert SERVICES["migrate"]["command"] == ["runbatch", "migrate"]


def test_long_running_services_have_healthchecks_and_named_volumes() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue  # one-shot jobs
        assert "healthcheck" in service, f"{name} has no healthcheck"
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
    for name, service in SERVICES.items():
        for mount in service.get("volumes") or []:
            volume = mount.split(":", 1)[0]
            assert volume in declared, f"{name} mounts undeclared volume {volume}"
    # The worker healthcheck reads the file its heartbeats touch, under RUNBATCH_HOME.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUNBATCH_HOME=/var/lib/runbatch" in dockerfile
    assert "/var/lib/runbatch/worker.alive" in SERVICES["worker-cpu"]["healthcheck"]["test"][-1]


def test_workers_serve_the_system_pools_and_the_gpu_one_reserves_gpus() -> None:
    assert SERVICES["worker-cpu"]["command"] == ["runbatch", "worker", "--pools", "SYSTEM_COMPUTE_POOL_CPU"]
    gpu = SERVICES["worker-gpu"]
    assert gpu["command"] == ["runbatch", "worker", "--pools", "SYSTEM_COMPUTE_POOL_GPU"]
    assert gpu["profiles"] == ["gpu"] and "profiles" not in SERVICES["worker-cpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def test_the_server_refuses_the_default_admin_token() -> None:
    """compose.yaml's token is a placeholder: the cluster will not start until .env replaces it."""
    from server.auth.bootstrap import check_secret

    server = _env("server")
    with pytest.raises(ValueError, match="^RUNBATCH_ADMIN_TOKEN is a known default or placeholder value; "):
        check_secret("RUNBATCH_ADMIN_TOKEN", server["RUNBATCH_ADMIN_TOKEN"])
    assert server["RUNBATCH_ADMIN_PASSWORD"] == ""  # unset: the server then ignores it


def test_the_registry_trusts_the_servers_tokens() -> None:
    registry = SERVICES["registry"]
    env = _env("registry")
    server = _env("server")
    assert registry["build"]["context"] == "runtime_images/registry"
    assert (ROOT / "runtime_images" / "registry" / "Dockerfile").is_file()
    # The token audience is the server's RUNBATCH_REGISTRY_SERVICE (its default here).
    assert env["REGISTRY_AUTH_TOKEN_SERVICE"] == ServerSettings.model_fields["registry_service"].default
    # The certificate is the one the server writes under its RUNBATCH_HOME, copied from its volume into
    # one of its own: the registry mounts nothing else of the server's (its keys and admin token).
    assert "server-home:/var/lib/runbatch" in SERVICES["server"]["volumes"]
    copier = SERVICES["registry-cert"]
    assert copier["volumes"] == [
        "server-home:/var/lib/runbatch:ro",
        "registry-cert:/etc/docker/registry/certs",
    ]
    assert copier["entrypoint"] == [
        "cp",
        "/var/lib/runbatch/registry/token.crt",
        "/etc/docker/registry/certs/token.crt",
    ]
    assert copier["depends_on"] == {"server": {"condition": "service_healthy"}}
    assert registry["volumes"] == [
        "registry-cert:/etc/docker/registry/certs:ro",
        "registry-data:/var/lib/docker-registry",
    ]
    assert env["REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE"] == "/etc/docker/registry/certs/token.crt"
    realm = urlparse(env["REGISTRY_AUTH_TOKEN_REALM"])
    assert (realm.port, realm.path) == (8080, "/api/v1/registry/token")
    assert SERVICES["server"]["ports"] == ["8080:8080"]
    # Image repository URLs name the registry as docker clients on the host reach it.
    assert server["RUNBATCH_REGISTRY_HOST"] == "localhost:5000"
    assert registry["ports"] == ["5000:5000"]
    assert registry["depends_on"] == {"registry-cert": {"condition": "service_completed_successfully"}}
