"""docs/rest.md's route table names only routes the app serves, with the methods it serves them with."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import iter_route_contexts

from server.app import create_app
from server.control_plane import ControlPlane

DOC = Path(__file__).parents[3] / "docs" / "rest.md"
# The shorthands the table's paths start with.
PREFIXES = {
    "{job}": "/databases/{database}/schemas/{schema}/jobs/{name}",
    "{model}": "/databases/{database}/schemas/{schema}/models/{model}",
    "{stage}": "/databases/{database}/schemas/{schema}/stages/{stage}",
}


def _documented() -> list[tuple[str, str]]:
    text = DOC.read_text()
    table = text[text.index("<!-- routes:") : text.index("<!-- /routes -->")]
    rows = []
    for methods, path in re.findall(r"^\| ([A-Z, ]+) \| `([^`]+)` \|", table, flags=re.MULTILINE):
        for prefix, full in PREFIXES.items():
            if path.startswith(prefix):
                path = full + path[len(prefix) :]
        rows += [(method.strip(), "/api/v1" + path) for method in methods.split(",")]
    return rows


def test_every_documented_route_exists(cp: ControlPlane) -> None:
    served = {
        (method, str(route.path).replace("{path:path}", "{path}"))
        for route in iter_route_contexts(create_app(cp).routes)
        if route.methods
        for method in route.methods
    }
    documented = _documented()
    assert len(documented) == 59
    assert [row for row in documented if row not in served] == []
