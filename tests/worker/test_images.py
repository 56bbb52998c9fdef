"""Where runtime images live in the cluster's registry (no Docker engine needed)."""

from __future__ import annotations

import pytest

from worker.images import ImageBuildError, RegistryRepository, code_digest


def test_a_repository_url_names_the_registry_and_the_repository_path() -> None:
    repo = RegistryRepository("127.0.0.1:5000/ML/Public/Runtime/")
    assert (repo.host, repo.path, repo.url) == (
        "127.0.0.1:5000",
        "ml/public/runtime",
        "127.0.0.1:5000/ml/public/runtime",
    )
    digest = code_digest("cpu")
    assert repo.runtime_reference("cpu") == f"127.0.0.1:5000/ml/public/runtime/runbatch-runtime:cpu-{digest}"
    assert repo.image_path(repo.runtime_reference("cpu")) == "ml/public/runtime/runbatch-runtime"
    assert repo.image_path("127.0.0.1:5000/ml/public/runtime/x@sha256:ab") == "ml/public/runtime/x"
    assert repo.push_command("gpu") == "runbatch images push gpu --repository /ml/public/runtime"
    assert RegistryRepository("localhost/a/b/c").host == "localhost"


@pytest.mark.parametrize(
    "url",
    [
        "/ml/public/runtime",
        "ml/public/runtime",
        "127.0.0.1:5000/ml/public",
        "registry:5000/a//c",
        "reg/a/b/c",
    ],
)
def test_what_is_not_a_repository_url_is_refused(url: str) -> None:
    with pytest.raises(ImageBuildError, match=r"is not an image repository URL: expected <registry host>/"):
        RegistryRepository(url)


def test_the_code_digest_is_stable_and_differs_by_kind() -> None:
    assert code_digest("cpu") == code_digest("cpu")
    assert len(code_digest("cpu")) == 16
    assert code_digest("cpu") != code_digest("gpu")
