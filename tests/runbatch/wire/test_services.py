from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError
from runbatch.wire.services import parse_specification

FULL = """
spec:
  containers:
  - name: main
    image: my-image:1.0
    command: [python, serve.py]
    args: [--port, 8080]
    env:
      PORT: 8080
      MODE: fast
    resources:
      requests: {memory: 1Gi, cpu: 500m, nvidia.com/gpu: 1}
      limits: {memory: 2Gi}
    readinessProbe: {port: 8080, path: /healthcheck}
    volumeMounts:
    - {name: data, mountPath: /data}
  endpoints:
  - {name: api, port: 8080, public: true}
  volumes:
  - {name: data, source: "@db.sch.stage/folder"}
serviceRoles:
- name: user
  endpoints: [api]
"""


def test_a_full_specification_parses_into_typed_fields() -> None:
    spec = parse_specification(FULL).spec
    (main,) = spec.containers
    assert (main.name, main.image, main.command, main.args) == (
        "main",
        "my-image:1.0",
        ["python", "serve.py"],
        ["--port", "8080"],
    )
    assert main.env == {"PORT": "8080", "MODE": "fast"}
    effective = main.resources.effective()
    assert (effective.memory, effective.cpu, effective.gpu) == ("2Gi", "500m", "1")
    assert main.readiness_probe is not None and (main.readiness_probe.port, main.readiness_probe.path) == (
        8080,
        "/healthcheck",
    )
    assert [(m.name, m.mount_path) for m in main.volume_mounts] == [("data", "/data")]
    assert [(e.name, e.port, e.public) for e in spec.endpoints] == [("api", 8080, True)]
    assert [(v.name, v.source) for v in spec.volumes] == [("data", "@db.sch.stage/folder")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec:\n  containers: []\n", r"spec\.containers: List should have at least 1 item"),
        (
            "spec:\n  containers:\n  - name: main\n",
            r"spec\.containers\[0\]\.image: Field required \(add it\)",
        ),
        (
            "spec:\n  containers:\n  - {name: main, image: x, imagePullPolicy: Always}\n",
            r"spec\.containers\[0\]\.imagePullPolicy: Extra inputs are not permitted \(remove it",
        ),
        (
            "spec:\n  containers:\n  - {name: Main_1, image: x}\n",
            r"spec\.containers\[0\]\.name: container names are lower-case letters",
        ),
        (
            "spec:\n  containers:\n  - {name: main, image: x, resources: {requests: {memory: lots}}}\n",
            r"spec\.containers\[0\]\.resources\.requests: Invalid memory_requests 'lots'",
        ),
        (
            "spec:\n  containers:\n  - name: main\n    image: x\n    volumeMounts: [{name: logs, mountPath: /logs}]\n",
            r"volumeMounts names volume 'logs', which spec\.volumes does not declare",
        ),
        (
            "spec:\n  containers:\n  - {name: main, image: x}\n  volumes: [{name: v, source: block}]\n",
            r"spec\.volumes\[0\]\.source: runbatch mounts 'local' volumes and stages",
        ),
        (
            "spec:\n  containers:\n  - {name: main, image: x}\n  - {name: main, image: y}\n",
            r"spec\.containers has two entries named 'main'",
        ),
        ("spec: [", r"not valid YAML"),
        ("- a list", r"must be a YAML mapping with a top-level 'spec:'"),
    ],
)
def test_bad_specifications_name_the_field_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_specification(text)
