"""Snowpark Container Services specifications and the worker protocol of job services.

A specification is Snowflake's YAML (``spec: containers / endpoints / volumes``). It is parsed
here once, on the control plane, so a bad field is refused with its path and a fix before any
container starts; workers receive the parsed, resolved form (``ServiceWork``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from runbatch.compute import parse_cpu, parse_gpu, parse_memory
from runbatch.errors import InvalidArgumentError
from runbatch.stage.storage import StorageConfig

__all__ = [
    "ContainerSpec",
    "ContainerWork",
    "EndpointSpec",
    "ReadinessProbe",
    "ResourceSpec",
    "Resources",
    "RuntimeImage",
    "ServiceAck",
    "ServiceBeat",
    "ServiceClaim",
    "ServiceExit",
    "ServiceLogBatch",
    "ServiceSpecification",
    "ServiceWork",
    "SpecBody",
    "VolumeMount",
    "VolumeSpec",
    "VolumeWork",
    "parse_specification",
]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it (runbatch does not support it, or it is misspelled)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ResourceSpec(_Strict):
    memory: str | None = None
    cpu: str | None = None
    gpu: str | None = Field(default=None, alias="nvidia.com/gpu")

    @field_validator("memory", "cpu", "gpu", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _parses(self) -> ResourceSpec:
        # The same grammar as JobSpec's cpu_requests / memory_requests / gpu_requests.
        if self.memory is not None:
            parse_memory(self.memory)
        if self.cpu is not None:
            parse_cpu(self.cpu)
        if self.gpu is not None:
            parse_gpu(self.gpu)
        return self


class Resources(_Strict):
    requests: ResourceSpec = Field(default_factory=ResourceSpec)
    limits: ResourceSpec = Field(default_factory=ResourceSpec)

    def effective(self) -> ResourceSpec:
        """What a container gets: the limit where one is set, else the request (Docker has only limits)."""
        return ResourceSpec(
            memory=self.limits.memory or self.requests.memory,
            cpu=self.limits.cpu or self.requests.cpu,
            gpu=self.limits.gpu or self.requests.gpu,
        )


class ReadinessProbe(_Strict):
    port: int = Field(ge=1, le=65535)
    path: str = Field(pattern=r"^/")


class VolumeMount(_Strict):
    name: str
    mount_path: str = Field(alias="mountPath", pattern=r"^/")


class ContainerSpec(_Strict):
    name: str
    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    readiness_probe: ReadinessProbe | None = Field(default=None, alias="readinessProbe")
    volume_mounts: list[VolumeMount] = Field(default_factory=list, alias="volumeMounts")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "container names are lower-case letters, digits and '-' (starting and ending with a letter or "
                f"digit), not {value!r}"
            )
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_text(cls, value: Any) -> Any:
        # YAML reads `PORT: 8080` as a number; the environment is text.
        if isinstance(value, dict):
            return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value

    @field_validator("command", "args", mode="before")
    @classmethod
    def _args_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v if isinstance(v, str) else str(v) for v in value]
        return value


class EndpointSpec(_Strict):
    name: str
    port: int = Field(ge=1, le=65535)
    public: bool = False
    protocol: Literal["HTTP", "TCP"] = "HTTP"


class VolumeSpec(_Strict):
    name: str
    source: str = Field(description="local, or a stage such as @db.schema.stage/folder")
    uid: int | None = None
    gid: int | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value != "local" and not value.startswith("@"):
            raise ValueError(f"runbatch mounts 'local' volumes and stages ('@stage/folder'), not {value!r}")
        return value


class SpecBody(_Strict):
    containers: list[ContainerSpec] = Field(min_length=1)
    endpoints: list[EndpointSpec] = Field(default_factory=list)
    volumes: list[VolumeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> SpecBody:
        _unique("spec.containers", [c.name for c in self.containers])
        _unique("spec.endpoints", [e.name for e in self.endpoints])
        _unique("spec.volumes", [v.name for v in self.volumes])
        volumes = {v.name for v in self.volumes}
        for i, container in enumerate(self.containers):
            for mount in container.volume_mounts:
                if mount.name not in volumes:
                    raise ValueError(
                        f"spec.containers[{i}].volumeMounts names volume {mount.name!r}, which spec.volumes does "
                        f"not declare; add it to spec.volumes (declared: {sorted(volumes) or 'none'})"
                    )
        return self


def _unique(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where} has two entries named {name!r}; names must be unique")
        seen.add(name)


class ServiceSpecification(_Strict):
    """A whole specification file. ``capabilities`` and ``serviceRoles`` are accepted and ignored."""

    spec: SpecBody
    capabilities: dict[str, Any] | None = None
    service_roles: list[dict[str, Any]] | None = Field(default=None, alias="serviceRoles")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the specification"


def parse_specification(text: str) -> ServiceSpecification:
    """Parse a YAML specification; errors name the field, what is wrong and how to fix it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"The service specification is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            "The service specification must be a YAML mapping with a top-level 'spec:' holding 'containers:'."
        )
    try:
        return ServiceSpecification.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = _where(tuple(error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            fix = _FIXES.get(str(error["type"]))
            problems.append(f"{where}: {message}" + (f" ({fix})" if fix else ""))
        raise InvalidArgumentError("Invalid service specification: " + "; ".join(problems) + ".") from None


# -- the worker protocol ---------------------------------------------------------------------------


class VolumeWork(BaseModel):
    """A volume as the worker mounts it: an empty folder, or a stage folder copied in and back out."""

    name: str
    storage: StorageConfig | None = Field(default=None, description="None for a local volume")
    prefix: str = Field(default="", description="Key prefix of the stage folder")
    read_only: bool = Field(
        default=False, description="Copied in only, never back (a model service's model version)"
    )


class RuntimeImage(BaseModel):
    """A container that runs in the runtime image (a model service's): the worker picks the image, as it
    does for a batch job's shards (the CPU or GPU runtime, plus the model's own requirements)."""

    kind: Literal["cpu", "gpu"] = "cpu"
    pip_requirements: list[str] = Field(default_factory=list)
    conda_dependencies: list[str] = Field(default_factory=list)
    python_version: str | None = None


class ContainerWork(BaseModel):
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None
    mounts: dict[str, str] = Field(default_factory=dict, description="Volume name -> mount path")
    readiness_port: int | None = Field(default=None, description="The spec's port of the readiness probe")
    readiness_path: str | None = None
    runtime: RuntimeImage | None = Field(
        default=None, description="Set: run in the runtime image, not `image`"
    )
    registry_token: SecretStr | None = Field(
        default=None,
        description="A registry token that pulls `image` (an image repository's image) and nothing else",
    )

    @field_serializer("registry_token", when_used="always")
    def _serialize_registry_token(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        if value is None:
            return None
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") == "reveal" else "**********"


class ServiceWork(BaseModel):
    """What a worker needs to run one job service attempt (it carries stage credentials)."""

    service_id: uuid.UUID
    job_id: uuid.UUID
    name: str = Field(description="DB.SCHEMA.NAME")
    attempt: int
    kind: Literal["JOB", "SERVICE"] = "JOB"
    containers: list[ContainerWork]
    volumes: list[VolumeWork] = Field(default_factory=list)
    ports: dict[str, int] = Field(
        default_factory=dict,
        description="Endpoint name -> the spec's port (a service gets a host port for each)",
    )


class ServiceClaim(BaseModel):
    worker: str = Field(min_length=1)


class ServiceBeat(BaseModel):
    """A worker's report on a running service: its containers, readiness and where its endpoints are."""

    attempt: int
    ready: bool = False
    endpoints: dict[str, str] = Field(default_factory=dict, description="Endpoint name -> host:port")
    containers: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ServiceAck(BaseModel):
    stop: bool


class ServiceLogBatch(BaseModel):
    attempt: int
    container: str
    lines: list[str]


class ServiceExit(BaseModel):
    attempt: int
    status: Literal["DONE", "FAILED"]
    exit_code: int | None = None
    message: str = ""
    containers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Container name -> {status, exit_code, message}"
    )
