"""Image repositories on a real (SQLite) metadata database: names, paths and who may pull."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbatch.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from runbatch.wire.resources import SqlRequest
from server.auth import grants
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import ImageRepositoryRow, RoleRow
from server.image_registry import client
from server.image_registry.client import RegistryImageTag
from server.image_registry.tokens import Scope
from server.resources.service import create_database, get_schema
from server.spcs import image_repositories as repos
from server.spcs import image_repository_sql
from server.spcs.image_repository_sql import repository_listing
from tests.registry_stub import RegistryStub, registry_stub

ADMIN = Principal(name="admin", role="ADMIN", roles=frozenset({"ACCOUNTADMIN", "PUBLIC"}))
ALICE = Principal(name="ALICE", role="USER", roles=frozenset({"ANALYST", "PUBLIC"}), default_role="ANALYST")
BOB = Principal(name="BOB", role="USER", roles=frozenset({"PUBLIC"}))
CAROL = Principal(name="CAROL", role="USER", roles=frozenset({"READERS", "PUBLIC"}))


@pytest.fixture
def stub() -> Iterator[RegistryStub]:
    with registry_stub() as running:
        yield running


@pytest.fixture
def registry(cp: ControlPlane, stub: RegistryStub) -> ControlPlane:
    cp.settings.registry_host = stub.host
    with cp.sessionmaker() as session:
        create_database(session, "ML", owner="ACCOUNTADMIN")
        session.add_all([RoleRow(name="ANALYST"), RoleRow(name="READERS")])
        session.flush()
        repos.create_repository(session, cp, ALICE, database="ML", schema="PUBLIC", name="IMAGES")
        session.commit()
    return cp


def test_without_a_registry_repositories_are_refused(cp: ControlPlane) -> None:
    with (
        cp.sessionmaker() as session,
        pytest.raises(InvalidArgumentError, match="has no image registry: start one"),
    ):
        repos.create_repository(session, cp, ADMIN, database="ML", schema="PUBLIC", name="R")


def test_a_specification_image_resolves_to_the_registry_for_the_owner(
    registry: ControlPlane, stub: RegistryStub
) -> None:
    with registry.sessionmaker() as session:
        image = repos.resolve_image(session, registry, ALICE, "/ml/Public/images/app/web:1.0", where="image")
        assert image == repos.RegistryImage(
            f"{stub.host}/ml/public/images/app/web:1.0", "ml/public/images/app/web"
        )
        latest = repos.resolve_image(session, registry, ADMIN, "/ML/PUBLIC/IMAGES/web", where="image")
        assert latest is not None and latest.reference == f"{stub.host}/ml/public/images/web:latest"
        assert (
            repos.resolve_image(session, registry, BOB, "web:1.0", where="image") is None
        )  # the engine's own
        with pytest.raises(
            PermissionDeniedError, match=r"it needs READ \(or WRITE, OWNERSHIP\), which no role of BOB"
        ):
            repos.resolve_image(session, registry, BOB, "/ml/public/images/web:1", where="image")
        with pytest.raises(NotFoundError, match=r"image repository ML\.PUBLIC\.OTHER does not exist"):
            repos.resolve_image(session, registry, ADMIN, "/ml/public/other/web:1", where="image")
        with pytest.raises(InvalidArgumentError, match="is not an image repository path"):
            repos.resolve_image(session, registry, ADMIN, "/ml/public/images", where="image")


def test_a_pull_token_grants_pull_on_its_image_only(registry: ControlPlane) -> None:
    image = repos.RegistryImage("127.0.0.1:5000/ml/public/images/web:1", "ml/public/images/web")
    claims = repos.pull_token(registry, image, "ALICE").split(".")[1]
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert body["access"] == [{"type": "repository", "name": "ml/public/images/web", "actions": ["pull"]}]
    assert body["exp"] - body["iat"] == repos.PULL_TOKEN_TTL_S


def test_names_that_differ_only_in_case_cannot_share_a_path(registry: ControlPlane) -> None:
    with registry.sessionmaker() as session:
        with pytest.raises(
            AlreadyExistsError,
            match=r"^Image repository ML\.PUBLIC\.IMAGES already uses the registry path ml/public/images of "
            r"ML\.PUBLIC\.\"images\" \(paths are lower case\)\. Choose another name\.$",
        ):
            repos.create_repository(session, registry, ADMIN, database="ML", schema="PUBLIC", name="images")
        # Nor may the database or schema differ in case only.
        create_database(session, "ml", owner="ACCOUNTADMIN")
        with pytest.raises(AlreadyExistsError, match=r"^Image repository ML\.PUBLIC\.IMAGES already uses"):
            repos.create_repository(session, registry, ADMIN, database="ml", schema="PUBLIC", name="IMAGES")
        # Two rows on one path (recorded before the check covered it) grant nothing.
        session.add(
            ImageRepositoryRow(schema_id=get_schema(session, "ml", "PUBLIC").id, name="IMAGES", owner="X")
        )
        session.flush()
        scope = Scope("repository", "ml/public/images/web", ("pull",))
        assert repos.granted_actions(session, ADMIN, scope) == ()
        with pytest.raises(
            InvalidArgumentError,
            match=r"^image '/ml/public/images/web:1': image repositories ML\.PUBLIC\.IMAGES and "
            r'"ml"\.PUBLIC\.IMAGES '
            r"share one registry path, so neither may be pulled from\. Their owners or ACCOUNTADMIN should drop one "
            r"of them\.$",
        ):
            repos.resolve_image(session, registry, ADMIN, "/ml/public/images/web:1", where="image")


def test_granted_actions(registry: ControlPlane) -> None:
    with registry.sessionmaker() as session:
        scope = Scope("repository", "ml/public/images/web", ("pull", "push", "bogus"))
        assert repos.granted_actions(session, ALICE, scope) == ("pull", "push")
        everything = Scope("repository", "ml/public/images/web", ("pull", "push", "delete", "*"))
        assert repos.granted_actions(session, ALICE, everything) == ("pull", "push", "delete", "*")
        assert repos.granted_actions(session, ADMIN, everything) == ("pull", "push", "delete", "*")
        assert repos.granted_actions(session, BOB, scope) == ()
        assert repos.granted_actions(session, ADMIN, Scope("repository", "ml/public/images", ("push",))) == ()
        assert repos.granted_actions(session, ADMIN, Scope("registry", "catalog", ("*",))) == ("*",)


def test_read_grants_pull_and_write_grants_push(registry: ControlPlane) -> None:
    target = grants.GrantTarget("IMAGE_REPOSITORY", ("ML", "PUBLIC", "IMAGES"))
    scope = Scope("repository", "ml/public/images/web", ("pull", "push"))
    with registry.sessionmaker() as session:
        assert repos.granted_actions(session, CAROL, scope) == ()
        with pytest.raises(PermissionDeniedError, match="needs the OWNERSHIP privilege"):
            grants.grant_privileges(session, BOB, ["READ"], target, "READERS")
        grants.grant_privileges(session, ALICE, ["READ"], target, "READERS")  # the owner grants
        assert repos.granted_actions(session, CAROL, scope) == ("pull",)
        image = repos.resolve_image(session, registry, CAROL, "/ml/public/images/web:1", where="image")
        assert image is not None and image.path == "ml/public/images/web"
        grants.grant_privileges(session, ADMIN, ["WRITE"], target, "READERS")
        assert repos.granted_actions(session, CAROL, scope) == ("pull", "push")
        # Deleting images is the owner's, as dropping the repository is: WRITE does not reach it.
        everything = Scope("repository", "ml/public/images/web", ("pull", "push", "delete", "*"))
        assert repos.granted_actions(session, CAROL, everything) == ("pull", "push")
        assert [(g[1], g[2], g[3], g[5]) for g in grants.grants_on(session, ADMIN, target)] == [
            ("OWNERSHIP", "IMAGE_REPOSITORY", "ML.PUBLIC.IMAGES", "ANALYST"),
            ("READ", "IMAGE_REPOSITORY", "ML.PUBLIC.IMAGES", "READERS"),
            ("WRITE", "IMAGE_REPOSITORY", "ML.PUBLIC.IMAGES", "READERS"),
        ]
        with pytest.raises(
            InvalidArgumentError, match="Privilege USAGE cannot be granted on IMAGE REPOSITORY"
        ):
            grants.grant_privileges(session, ADMIN, ["USAGE"], target, "READERS")


def test_ownership_follows_the_ownership_grant(registry: ControlPlane) -> None:
    target = grants.GrantTarget("IMAGE_REPOSITORY", ("ML", "PUBLIC", "IMAGES"))
    everything = Scope("repository", "ml/public/images/web", ("pull", "push", "delete", "*"))
    with registry.sessionmaker() as session:
        grants.grant_privileges(session, ALICE, ["OWNERSHIP"], target, "READERS")
        # The old owner role keeps nothing; the new one may do everything, DROP and REPLACE included.
        assert repos.granted_actions(session, ALICE, everything) == ()
        assert repos.granted_actions(session, CAROL, everything) == ("pull", "push", "delete", "*")
        row = repos.get_repository(session, "ML", "PUBLIC", "IMAGES")
        assert repos.owner_role(session, row) == "READERS"
        assert repository_listing(session, registry, row)[5] == "READERS"
        with pytest.raises(
            PermissionDeniedError,
            match=r"^Insufficient privileges to drop image repository ML\.PUBLIC\.IMAGES: it needs its owner "
            r"role READERS or ACCOUNTADMIN, which ALICE does not hold\.$",
        ):
            repos.drop_repository(session, registry, ALICE, "ML", "PUBLIC", "IMAGES")
        with pytest.raises(PermissionDeniedError, match="to replace image repository"):
            repos.create_repository(
                session, registry, ALICE, database="ML", schema="PUBLIC", name="IMAGES", or_replace=True
            )
        replaced, created = repos.create_repository(
            session, registry, CAROL, database="ML", schema="PUBLIC", name="IMAGES", or_replace=True
        )
        assert created and repos.owner_role(session, replaced) == "PUBLIC"  # CAROL's owner role
        assert repos.drop_repository(session, registry, CAROL, "ML", "PUBLIC", "IMAGES")


def test_listings_show_the_repositories_a_role_holds_a_privilege_on(registry: ControlPlane) -> None:
    target = grants.GrantTarget("IMAGE_REPOSITORY", ("ML", "PUBLIC", "IMAGES"))
    with registry.sessionmaker() as session:
        repos.create_repository(session, registry, ADMIN, database="ML", schema="PUBLIC", name="ADMINS")
        assert [r.name for r in repos.list_repositories(session, ADMIN, "ML", "PUBLIC")] == [
            "ADMINS",
            "IMAGES",
        ]
        assert [r.name for r in repos.list_repositories(session, ALICE, None, None)] == ["IMAGES"]
        assert repos.list_repositories(session, CAROL, "ML", None) == []
        with pytest.raises(
            NotFoundError, match=r"^Image repository ML\.PUBLIC\.IMAGES does not exist or not"
        ):
            repos.get_visible_repository(session, CAROL, "ML", "PUBLIC", "IMAGES")
        grants.grant_privileges(session, ALICE, ["READ"], target, "READERS")
        assert [r.name for r in repos.list_repositories(session, CAROL, "ML", "PUBLIC")] == ["IMAGES"]
        assert repos.get_visible_repository(session, CAROL, "ML", "PUBLIC", "IMAGES").name == "IMAGES"


def _left(stub: RegistryStub) -> dict[str, tuple[list[str], int, int]]:
    """Per image name: its tags, manifests and linked blobs."""
    return {
        name: (sorted(tags), len(stub.manifests.get(name, {})), len(stub.blobs.get(name, set())))
        for name, tags in stub.tags.items()
    }


def test_drop_deletes_the_images_so_a_new_repository_starts_empty(
    registry: ControlPlane, stub: RegistryStub
) -> None:
    stub.push("ml/public/images/web", "1.0", ["sha256:" + "a" * 64, "sha256:" + "b" * 64])
    stub.push("ml/public/images/web", "latest", ["sha256:" + "a" * 64])
    stub.push("ml/public/images/app/api", "2", ["sha256:" + "c" * 64])
    stub.push("ml/public/imagesx/other", "1", ["sha256:" + "d" * 64])  # another path: kept
    with registry.sessionmaker() as session:
        assert repos.drop_repository(session, registry, ALICE, "ML", "PUBLIC", "IMAGES")
        session.commit()
    assert _left(stub) == {
        "ml/public/images/web": ([], 0, 0),
        "ml/public/images/app/api": ([], 0, 0),
        "ml/public/imagesx/other": (["1"], 1, 2),
    }
    deletes = [(m, p, a) for m, p, a in stub.requests if m == "DELETE"]
    assert len(deletes) == 9  # 6 blob links (configs included) and 3 manifests
    assert {tuple(a) for _, _, a in deletes} == {("pull", "delete")}

    # A repository that went with its database left images behind: creating it again deletes them.
    stub.push("ml/public/images/web", "old", ["sha256:" + "e" * 64])
    with registry.sessionmaker() as session:
        repos.create_repository(session, registry, BOB, database="ML", schema="PUBLIC", name="IMAGES")
        session.commit()
    assert _left(stub)["ml/public/images/web"] == ([], 0, 0)


def test_a_registry_that_cannot_delete_keeps_the_repository(
    registry: ControlPlane, stub: RegistryStub
) -> None:
    stub.refuse = True
    with registry.sessionmaker() as session:
        with pytest.raises(ServiceUnavailableError, match="refused the control plane's token"):
            repos.drop_repository(session, registry, ALICE, "ML", "PUBLIC", "IMAGES")
        assert repos.get_repository(session, "ML", "PUBLIC", "IMAGES").name == "IMAGES"
        registry.settings.registry_host = "127.0.0.1:9"  # nothing listens there
        with pytest.raises(
            ServiceUnavailableError,
            match=r"^The image registry did not answer at http://127\.0\.0\.1:9/v2/_catalog\?n=1000: .*\. Start it "
            r"\(scripts/registry start, or the compose registry service\) and check that RUNBATCH_REGISTRY_HOST "
            r"\(127\.0\.0\.1:9\) is where the control plane reaches it\.$",
        ):
            repos.create_repository(session, registry, ALICE, database="ML", schema="PUBLIC", name="OTHER")


def test_show_images_reads_the_registry_with_no_metadata_transaction_open(
    registry: ControlPlane, stub: RegistryStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = stub.push("ml/public/images/app/web", "1.0", ["sha256:" + "a" * 64])
    read = client.list_images
    with registry.sessionmaker() as session:

        def list_images(home: Path, **kwargs: str) -> list[RegistryImageTag]:
            assert not session.in_transaction()  # the registry may be slow: no connection is held meanwhile
            return read(home, **kwargs)

        monkeypatch.setattr(image_repository_sql, "list_images", list_images)
        shown = image_repository_sql.run_image_repository_statement(
            session,
            registry,
            ALICE,
            SqlRequest(sql="SHOW IMAGES IN IMAGE REPOSITORY ML.PUBLIC.IMAGES"),
        )
    assert shown.rows == [["2026-11-22T08:00:00Z", "app/web", "1.0", digest, "/ml/public/images/app/web:1.0"]]
