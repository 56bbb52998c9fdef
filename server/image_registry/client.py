"""The control plane reading the registry (SHOW IMAGES IN IMAGE REPOSITORY) and emptying a repository's
path in it (DROP and CREATE IMAGE REPOSITORY), with tokens it signs itself."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runbatch.errors import ServiceUnavailableError
from server.image_registry.keys import load_signing_key
from server.image_registry.tokens import Scope, sign_token

__all__ = ["RegistryImageTag", "delete_images", "list_images"]

_MANIFESTS = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_TIMEOUT_S = 10.0
_TOKEN_TTL_S = 60
_SUBJECT = "runbatch-control-plane"


@dataclass(frozen=True)
class RegistryImageTag:
    created_on: str
    name: str  # the image's name below the repository
    tag: str
    digest: str
    path: str  # /db/schema/repo/image:tag, as a specification names it


class _Registry:
    """One conversation with the registry: its base URL and the tokens this control plane signs for it."""

    def __init__(self, client: httpx.Client, home: Path, registry: str, service: str) -> None:
        self.client = client
        self.host = registry
        self.base = f"http://{registry}/v2"
        self.service = service
        self.key = load_signing_key(home)

    def token(self, scope: Scope) -> str:
        return sign_token(
            self.key,
            subject=_SUBJECT,
            audience=self.service,
            access=[scope.claim(scope.actions)],
            ttl_s=_TOKEN_TTL_S,
        )

    def request(
        self, method: str, url: str, token: str, *, ok: tuple[int, ...] = (200,), **headers: str
    ) -> httpx.Response:
        try:
            response = self.client.request(
                method, url, headers={"Authorization": f"Bearer {token}", **headers}
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"The image registry did not answer at {url}: {exc}. Start it (scripts/registry start, or the "
                f"compose registry service) and check that RUNBATCH_REGISTRY_HOST ({self.host}) is where the "
                "control plane reaches it."
            ) from None
        if response.status_code == 401:
            raise ServiceUnavailableError(
                f"The image registry at {self.host} refused the control plane's token (401 to {method} {url}). "
                "It must trust this control plane's $RUNBATCH_HOME/registry/token.crt and name the service "
                f"{self.service!r} (RUNBATCH_REGISTRY_SERVICE): restart it with scripts/registry start --home "
                "<RUNBATCH_HOME> after the signing key changed."
            )
        if response.status_code not in ok:
            raise ServiceUnavailableError(
                f"The image registry answered {response.status_code} to {method} {url}: {response.text[:300]}"
            )
        return response

    def names_below(self, repository: str) -> Iterator[str]:
        """The registry's image names below ``repository`` (``db/schema/repo``), from its catalog."""
        catalog = self.token(Scope("registry", "catalog", ("*",)))
        url: str | None = f"{self.base}/_catalog?n=1000"
        while url:
            response = self.request("GET", url, catalog)
            yield from (
                n for n in response.json().get("repositories") or [] if n.startswith(repository + "/")
            )
            link = response.links.get("next", {}).get("url")
            url = f"http://{self.host}{link}" if link else None

    def tags(self, name: str, token: str) -> list[str]:
        # An image whose every manifest was deleted stays in the catalog with no tags (or none at all).
        response = self.request("GET", f"{self.base}/{name}/tags/list", token, ok=(200, 404))
        if response.status_code == 404:
            return []
        return sorted(response.json().get("tags") or [])

    def manifest(self, name: str, reference: str, token: str) -> httpx.Response | None:
        response = self.request(
            "GET", f"{self.base}/{name}/manifests/{reference}", token, ok=(200, 404), Accept=_MANIFESTS
        )
        return None if response.status_code == 404 else response


def list_images(home: Path, *, registry: str, service: str, repository: str) -> list[RegistryImageTag]:
    """Every tag of every image below ``repository`` (``db/schema/repo``), newest image first."""
    listed: list[RegistryImageTag] = []
    with httpx.Client(timeout=_TIMEOUT_S, follow_redirects=True) as client:
        reg = _Registry(client, home, registry, service)
        for name in list(reg.names_below(repository)):
            pull = reg.token(Scope("repository", name, ("pull",)))
            for tag in reg.tags(name, pull):
                manifest = reg.manifest(name, tag, pull)
                if manifest is None:
                    continue  # untagged between the two requests
                listed.append(
                    RegistryImageTag(
                        created_on=_created(reg, name, manifest, pull),
                        name=name[len(repository) + 1 :],
                        tag=tag,
                        digest=manifest.headers.get("docker-content-digest", ""),
                        path=f"/{name}:{tag}",
                    )
                )
    return sorted(listed, key=lambda i: (i.created_on, i.name, i.tag), reverse=True)


def _created(reg: _Registry, name: str, manifest: httpx.Response, token: str) -> str:
    """The image's creation time from its config blob (empty for an index of several platforms)."""
    config = manifest.json().get("config") or {}
    digest = config.get("digest")
    if not digest:
        return ""
    blob = reg.request("GET", f"{reg.base}/{name}/blobs/{digest}", token)
    return str(blob.json().get("created") or "")


def _referenced(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The blobs (config, layers) and the child manifests (of an index) a manifest names."""
    blobs = [d["digest"] for d in [body.get("config") or {}, *(body.get("layers") or [])] if d.get("digest")]
    children = [d["digest"] for d in body.get("manifests") or [] if d.get("digest")]
    return blobs, children


def delete_images(home: Path, *, registry: str, service: str, repository: str) -> int:
    """Delete every tagged image below ``repository`` (``db/schema/repo``) from the registry: its
    manifests (the tags go with them) and the repository's links to their blobs, so that a repository
    created again on the same path can reach none of them, not even by digest. The blobs' bytes stay
    until the registry's garbage collection. Returns how many manifests were deleted."""
    deleted = 0
    with httpx.Client(timeout=_TIMEOUT_S, follow_redirects=True) as client:
        reg = _Registry(client, home, registry, service)
        for name in list(reg.names_below(repository)):
            token = reg.token(Scope("repository", name, ("pull", "delete")))
            manifests: list[str] = []
            blobs: list[str] = []
            pending = reg.tags(name, token)
            while pending:
                manifest = reg.manifest(name, pending.pop(), token)
                if manifest is None:
                    continue
                digest = manifest.headers.get("docker-content-digest", "")
                if not digest or digest in manifests:
                    continue
                manifests.append(digest)
                found, children = _referenced(manifest.json())
                blobs += [b for b in found if b not in blobs]
                pending += children
            for blob in blobs:
                reg.request("DELETE", f"{reg.base}/{name}/blobs/{blob}", token, ok=(202, 404))
            for digest in manifests:
                reg.request("DELETE", f"{reg.base}/{name}/manifests/{digest}", token, ok=(202, 404))
            deleted += len(manifests)
    return deleted
