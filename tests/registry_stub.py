"""An in-memory stand-in for distribution's registry API (the parts the control plane calls: catalog,
tags, manifests, blobs, deletes), checking the actions of the bearer token of each request."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RegistryStub", "registry_stub"]

_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class RegistryStub:
    host: str = ""
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> tag -> manifest digest
    manifests: dict[str, dict[str, bytes]] = field(default_factory=dict)  # name -> digest -> body
    blobs: dict[str, set[str]] = field(default_factory=dict)  # name -> linked blob digests
    requests: list[tuple[str, str, list[str]]] = field(default_factory=list)  # method, path, token actions
    refuse: bool = False  # answer 401 to everything, as a registry trusting another key does

    def push(self, name: str, tag: str, layers: list[str]) -> str:
        """An image of one config blob and ``layers``; returns its manifest digest."""
        config = "sha256:" + hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": _MANIFEST,
                "config": {"digest": config},
                "layers": [{"digest": d} for d in layers],
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests.setdefault(name, {})[digest] = body
        self.tags.setdefault(name, {})[tag] = digest
        self.blobs.setdefault(name, set()).update([config, *layers])
        return digest


def _actions(header: str, kind: str, name: str) -> list[str]:
    token = header.removeprefix("Bearer ")
    claims = token.split(".")[1]
    access = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["access"]
    return [a for item in access if item["type"] == kind and item["name"] == name for a in item["actions"]]


def _handler(stub: RegistryStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str) -> None:
            path = self.path.split("?")[0].removeprefix("/v2/")
            header = self.headers.get("Authorization", "")
            if stub.refuse:
                return self._send(401)
            if path == "_catalog":
                actions = _actions(header, "registry", "catalog")
                stub.requests.append((method, path, actions))
                if "*" not in actions:
                    return self._send(401)
                return self._send(200, json.dumps({"repositories": sorted(stub.tags)}).encode())
            for kind in ("/tags/list", "/manifests/", "/blobs/"):
                if kind in path:
                    name, _, ref = path.partition(kind)
                    break
            else:
                return self._send(404)
            actions = _actions(header, "repository", name)
            stub.requests.append((method, path, actions))
            if ("delete" if method == "DELETE" else "pull") not in actions:
                return self._send(401)
            if kind == "/tags/list":
                if name not in stub.tags:
                    return self._send(404)
                return self._send(200, json.dumps({"name": name, "tags": sorted(stub.tags[name])}).encode())
            if kind == "/manifests/":
                digest = stub.tags.get(name, {}).get(ref, ref)
                body = stub.manifests.get(name, {}).get(digest)
                if body is None:
                    return self._send(404)
                if method == "DELETE":
                    del stub.manifests[name][digest]
                    stub.tags[name] = {t: d for t, d in stub.tags[name].items() if d != digest}
                    return self._send(202)
                return self._send(200, body, Docker_Content_Digest=digest, Content_Type=_MANIFEST)
            if ref not in stub.blobs.get(name, set()):
                return self._send(404)
            if method == "DELETE":
                stub.blobs[name].discard(ref)
                return self._send(202)
            return self._send(200, json.dumps({"created": "2026-11-22T08:00:00Z"}).encode())

        def do_GET(self) -> None:
            self._route("GET")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def registry_stub() -> Iterator[RegistryStub]:
    stub = RegistryStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
