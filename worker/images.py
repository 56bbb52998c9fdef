"""Runtime images, tagged by the hash of what goes into them, and built only when that changes.

- the base: a Python 3.11 image; where no registry is reachable, Debian bookworm bootstrapped
  with ``debootstrap --variant=minbase`` and ``docker import``ed (about two minutes, once);
- the runtime images (``runtime_images/cpu``, ``runtime_images/gpu``), from a source checkout:
  ``runbatch-runtime:cpu-<hash>``;
- per-model environment images (``MODEL_DOCKERFILE``): a runtime image plus the model's
  requirements that it does not already satisfy, built once per environment hash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from runbatch.runtime.requirements import as_pip_requirement

__all__ = [
    "BASE_TAG",
    "RUNTIME_REPOSITORY",
    "ImageBuildError",
    "ImageBuilder",
    "RegistryRepository",
    "code_digest",
    "source_root",
]

log = logging.getLogger("runbatch.images")

RUNTIME_REPOSITORY = "runbatch-runtime"
MODEL_REPOSITORY = "runbatch-model-env"
BASE_TAG = "runbatch-debian:bookworm-python3"
PUBLIC_BASE = "python:3.11-slim-bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
KINDS = ("cpu", "gpu")
# A model's own environment on a runtime image: the requirements logged with the model that the
# runtime image does not already satisfy (kept here, not in runtime_images/, because workers
# installed from a wheel build these too).
MODEL_DOCKERFILE = """\
ARG RUNTIME_IMAGE
FROM ${RUNTIME_IMAGE}
USER root
COPY . /tmp/context
RUN set -eux; \\
    if [ -s /tmp/context/ca.crt ]; then export PIP_CERT=/tmp/context/ca.crt; fi; \\
    python -m runbatch.runtime.requirements /tmp/context/requirements.txt; \\
    rm -rf /tmp/context
USER runbatch
"""
_LABEL = "org.runbatch.image"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


def source_root(explicit: Path | None = None) -> Path:
    """The source checkout that holds ``runtime_images/`` and ``pyproject.toml``."""
    candidates = [explicit] if explicit else [Path(__file__).resolve().parent.parent, Path.cwd()]
    for root in candidates:
        if root is not None and (root / "runtime_images").is_dir() and (root / "pyproject.toml").is_file():
            return root
    raise ImageBuildError(
        "Building runtime images needs a runbatch source checkout (runtime_images/ and pyproject.toml); run "
        "the command from one, or pass --source."
    )


def _ca_bundle() -> bytes:
    """The CA bundle pip uses on this host, so builds behind the same TLS proxy can reach the index."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def code_digest(kind: str) -> str:
    """The runbatch code a runtime image carries, hashed: the tag of runtime images in the cluster's
    registry (``<kind>-<digest>``). Unlike the local build tag it leaves out the base image and this
    host's CA bundle, so every host running the same runbatch finds the image another host pushed."""
    import runbatch

    package = Path(runbatch.__file__).resolve().parent
    return _digest(
        [kind.encode()] + [str(p.relative_to(package)).encode() + p.read_bytes() for p in _tree(package)]
    )


class RegistryRepository:
    """An image repository of the cluster's registry, by its ``repository_url``
    (``<registry host>/<db>/<schema>/<repository>``, as SHOW IMAGE REPOSITORIES gives it)."""

    def __init__(self, url: str) -> None:
        parts = url.strip().strip("/").split("/")
        host = parts[0]
        # Docker's own rule for where a reference names its registry: a dot, a port or localhost.
        if len(parts) != 4 or not all(parts) or not ("." in host or ":" in host or host == "localhost"):
            raise ImageBuildError(
                f"{url!r} is not an image repository URL: expected <registry host>/<db>/<schema>/<repository> "
                "as SHOW IMAGE REPOSITORIES gives it in repository_url, e.g. 127.0.0.1:5000/ml/public/runtime."
            )
        self.host = host
        self.path = "/".join(parts[1:]).lower()
        self.url = f"{host}/{self.path}"

    def runtime_reference(self, kind: str) -> str:
        """Where this runbatch's runtime image of ``kind`` lives in the repository."""
        return f"{self.url}/{RUNTIME_REPOSITORY}:{kind}-{code_digest(kind)}"

    def image_path(self, reference: str) -> str:
        """The registry's name of an image of this repository (no host, no tag): what tokens grant."""
        name = reference.split("@", 1)[0].removeprefix(self.host + "/")
        return name.rsplit(":", 1)[0] if ":" in name else name

    def push_command(self, kind: str) -> str:
        return f"runbatch images push {kind} --repository /{self.path}"


class ImageBuilder:
    """Builds and finds runbatch's images on one Docker engine. Safe to share between threads."""

    def __init__(
        self,
        client: Any,
        *,
        source: Path | None = None,
        base_image: str | None = None,
        lock_dir: Path | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self._source = source
        self._base_image = base_image
        self._lock_dir = lock_dir or Path(tempfile.gettempdir()) / "runbatch-image-locks"
        self._echo = echo or log.info
        self._lock = threading.Lock()
        self._installed: dict[str, dict[str, str]] = {}

    # -- helpers --------------------------------------------------------------------------------
    def exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _locked(self, name: str) -> Any:
        """A lock across threads and processes of this host, so one image is built once."""
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self._lock_dir / f"{name.replace('/', '_').replace(':', '_')}.lock", "w")  # noqa: SIM115

        class _Held:
            def __enter__(self) -> None:
                fcntl.flock(handle, fcntl.LOCK_EX)

            def __exit__(self, *exc: object) -> None:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()

        return _Held()

    def _build(
        self, context: Path, tag: str, buildargs: dict[str, str], kind: str, *, nocache: bool = False
    ) -> None:
        import docker.errors

        self._echo(f"Building {tag} ...")
        try:
            stream = self.client.api.build(
                path=str(context),
                tag=tag,
                buildargs=buildargs,
                network_mode="host",
                rm=True,
                forcerm=True,
                nocache=nocache,
                decode=True,
                labels={_LABEL: kind},
            )
            tail: list[str] = []
            for chunk in stream:
                if "error" in chunk:
                    raise ImageBuildError(
                        f"Building {tag} failed: {chunk['error'].strip()}\n" + "".join(tail[-20:])
                    )
                text = chunk.get("stream", "")
                if text:
                    tail.append(text)
                    log.debug("%s", text.rstrip())
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"Building {tag} failed: {exc}") from exc
        self._echo(f"Built {tag}.")

    # -- the base -------------------------------------------------------------------------------
    def base_image(self) -> str:
        """The explicit base, else python:3.11-slim where present or pullable, else a Debian bootstrap."""
        import docker.errors

        if self._base_image:
            if not self.exists(self._base_image):
                self.client.images.pull(self._base_image)
            return self._base_image
        if self.exists(PUBLIC_BASE):
            return PUBLIC_BASE
        if self.exists(BASE_TAG):
            return BASE_TAG
        try:
            self.client.images.pull(PUBLIC_BASE)
            return PUBLIC_BASE
        except docker.errors.APIError:
            self._echo(f"No registry answers for {PUBLIC_BASE}; bootstrapping a Debian base instead.")
        with self._locked(BASE_TAG):
            if not self.exists(BASE_TAG):
                self._bootstrap_debian()
        return BASE_TAG

    def _bootstrap_debian(self) -> None:
        if shutil.which("debootstrap") is None:
            raise ImageBuildError(
                "No base image: no registry is reachable and debootstrap is not installed. Install it "
                "(apt-get install debootstrap; scripts/docker-engine does) or pass --base-image."
            )
        with tempfile.TemporaryDirectory(prefix="runbatch-rootfs-") as tmp:
            rootfs, archive = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
            self._echo("debootstrap bookworm (minbase, python3, python3-venv, ca-certificates) ...")
            done = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates",
                    "bookworm",
                    str(rootfs),
                    os.environ.get("RUNBATCH_DEBIAN_MIRROR", DEBIAN_MIRROR),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise ImageBuildError(f"debootstrap failed: {done.stderr.strip()[-2000:]}")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
            self.client.api.import_image_from_file(
                str(archive),
                repository=BASE_TAG.split(":")[0],
                tag=BASE_TAG.split(":")[1],
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    'CMD ["python3"]',
                ],
            )
        self._echo(f"Imported {BASE_TAG}.")

    # -- runtime images -------------------------------------------------------------------------
    def runtime_image(self, kind: str, *, force: bool = False) -> str:
        """``runbatch-runtime:<kind>-<hash>``, built from the source checkout when not there yet."""
        if kind not in KINDS:
            raise ImageBuildError(f"Unknown runtime image kind {kind!r}; choose one of {', '.join(KINDS)}.")
        root = source_root(self._source)
        base = self.base_image()
        files = {
            "Dockerfile": (root / "runtime_images" / kind / "Dockerfile").read_bytes(),
            "torch-requirement.txt": self._torch_requirement(kind).encode(),
            "ca.crt": _ca_bundle(),
        }
        # Only what the runtime installs: documentation changes do not rebuild images.
        sources = [root / "pyproject.toml", *_tree(root / "runbatch")]
        base_id = self.client.images.get(base).id.encode()
        digest = _digest(
            [kind.encode(), base_id]
            + [name.encode() + body for name, body in sorted(files.items())]
            + [str(p.relative_to(root)).encode() + p.read_bytes() for p in sources]
        )
        tag = f"{RUNTIME_REPOSITORY}:{kind}-{digest}"
        with self._locked(tag):
            if self.exists(tag) and not force:
                return tag
            with tempfile.TemporaryDirectory(prefix="runbatch-image-") as tmp:
                context = Path(tmp)
                for name, body in files.items():
                    (context / name).write_bytes(body)
                for path in sources:
                    target = context / "src" / path.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                (context / "src" / "README.md").write_text("runbatch runtime\n")  # pyproject's readme
                (context / "wheels").mkdir()
                self._fetch_wheels(files["torch-requirement.txt"].decode(), context / "wheels")
                self._build(context, tag, {"BASE_IMAGE": base}, kind, nocache=force)
        self._prune(kind, keep=tag)
        return tag

    @staticmethod
    def _torch_requirement(kind: str) -> str:
        """The CPU image takes the torch build this host has (install the CPU build first, as
        scripts/test does); the GPU image lets vLLM pick its CUDA torch."""
        if kind != "cpu":
            return ""
        try:
            return f"torch=={metadata.version('torch')}"
        except metadata.PackageNotFoundError:
            return "torch"

    @staticmethod
    def _fetch_wheels(requirement: str, target: Path) -> None:
        if not requirement:
            return
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(target), requirement],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ImageBuildError(f"pip download {requirement} failed: {done.stderr.strip()[-2000:]}")

    def _prune(self, kind: str, *, keep: str) -> None:
        """Older images of the same kind: each is a full copy of the filesystem on vfs."""
        import docker.errors

        for image in self.client.images.list(name=RUNTIME_REPOSITORY):
            if keep in image.tags or not any(
                t.startswith(f"{RUNTIME_REPOSITORY}:{kind}-") for t in image.tags
            ):
                continue
            try:
                self.client.images.remove(image.id, noprune=False)
            except docker.errors.APIError:
                pass  # still used by a container; the next build tries again

    # -- per-model environments -----------------------------------------------------------------
    def installed(self, image: str) -> dict[str, str]:
        """Distribution name -> version inside ``image`` (read once per image and process)."""
        image_id = self.client.images.get(image).id
        with self._lock:
            known = self._installed.get(image_id)
        if known is not None:
            return known
        output = self.client.containers.run(
            image,
            entrypoint=["python", "-c"],
            command=[
                "import json, importlib.metadata as m; "
                "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
            ],
            remove=True,
            network_mode="none",
        )
        found: dict[str, str] = json.loads(output)
        with self._lock:
            self._installed[image_id] = found
        return found

    def missing(self, image: str, requirements: Iterable[str]) -> list[str]:
        """The requirements ``image`` does not satisfy (the rule of runbatch.runtime.requirements)."""
        installed = self.installed(image)
        missing = []
        for text in requirements:
            req = Requirement(text)
            version = installed.get(req.name.lower()) or installed.get(req.name.lower().replace("_", "-"))
            if version is None or (req.specifier and not req.specifier.contains(version, prereleases=True)):
                missing.append(text)
        return missing

    def model_image(
        self,
        runtime_image: str,
        pip_requirements: Iterable[str],
        conda_dependencies: Iterable[str] = (),
        *,
        force: bool = False,
        repository: str | None = None,
    ) -> str:
        """``runtime_image`` itself when it satisfies the model, else an image with what is missing."""
        requirements = sorted({*pip_requirements, *(as_pip_requirement(c) for c in conda_dependencies)})
        if not requirements and not force:
            return runtime_image
        missing = self.missing(runtime_image, requirements)
        if not missing and not force:
            return runtime_image
        base_id = self.client.images.get(runtime_image).id
        digest = _digest([base_id.encode(), *(r.encode() for r in requirements)])
        tag = f"{(repository or MODEL_REPOSITORY).lower()}:{digest}"
        with self._locked(tag):
            if self.exists(tag) and not force:
                return tag
            with tempfile.TemporaryDirectory(prefix="runbatch-model-image-") as tmp:
                context = Path(tmp)
                (context / "Dockerfile").write_text(MODEL_DOCKERFILE)
                (context / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
                (context / "ca.crt").write_bytes(_ca_bundle())
                # A forced build runs pip again: unpinned requirements take their newest release.
                self._build(context, tag, {"RUNTIME_IMAGE": runtime_image}, "model", nocache=force)
        return tag
