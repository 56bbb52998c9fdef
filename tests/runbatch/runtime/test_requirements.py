"""What a model's environment image installs: only requirements the runtime image lacks."""

from __future__ import annotations

from importlib import metadata

import pytest

from runbatch.runtime.requirements import as_pip_requirement, unsatisfied


def test_installed_versions_satisfy_pins_local_labels_included() -> None:
    numpy = metadata.version("numpy")
    assert unsatisfied([f"numpy=={numpy}", "numpy>=1", "# a comment", "", "pandas"]) == []
    assert unsatisfied(["numpy<1", "no-such-distribution-xyz==1.0", "numpy; python_version < '3'"]) == [
        "numpy<1",
        "no-such-distribution-xyz==1.0",
    ]
    torch = metadata.version("torch")
    assert "+" in torch  # the CPU build: 2.13.0+cpu satisfies torch==2.13.0
    assert unsatisfied([f"torch=={torch.split('+')[0]}"]) == []


def test_conda_dependencies_as_pip_requirements() -> None:
    assert as_pip_requirement("conda-forge::pandas=2.2.1") == "pandas==2.2.1"
    assert as_pip_requirement("pandas==2.2.1") == "pandas==2.2.1"
    assert as_pip_requirement("pandas>=2") == "pandas>=2"
    assert as_pip_requirement("defaults::pandas") == "pandas"


def test_a_bad_requirement_is_named() -> None:
    with pytest.raises(ValueError, match=r"^Invalid requirement '!!bad' in the model's environment"):
        unsatisfied(["!!bad"])
