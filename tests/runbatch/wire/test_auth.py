"""The grant request's documented privileges agree with what the control plane grants."""

from __future__ import annotations

from runbatch.wire.auth import GrantRequest
from server.auth.grants import PRIVILEGES


def test_the_privilege_description_names_each_object_types_privileges() -> None:
    description = GrantRequest.model_fields["privilege"].description
    assert description == (
        "OWNERSHIP, or: USAGE on models and compute pools; READ, USAGE or WRITE on stages; "
        "READ (pull) or WRITE (push) on image repositories"
    )
    assert PRIVILEGES == {
        "MODEL": ("OWNERSHIP", "USAGE"),
        "COMPUTE_POOL": ("OWNERSHIP", "USAGE"),
        "STAGE": ("OWNERSHIP", "READ", "USAGE", "WRITE"),
        "IMAGE_REPOSITORY": ("OWNERSHIP", "READ", "WRITE"),
    }
