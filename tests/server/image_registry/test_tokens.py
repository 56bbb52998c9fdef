"""Registry tokens: scopes as docker sends them, and JWTs that distribution's token auth accepts."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from runbatch.errors import InvalidArgumentError
from server.image_registry.keys import certificate_path, load_signing_key
from server.image_registry.tokens import Scope, parse_scopes, sign_token


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_scopes_parse_as_docker_sends_them() -> None:
    assert parse_scopes(["repository:db/public/repo/img:pull,push", "registry:catalog:*"]) == [
        Scope("repository", "db/public/repo/img", ("pull", "push")),
        Scope("registry", "catalog", ("*",)),
    ]
    # Several items in one parameter, a resource class, a name with ':' (a host:port prefix).
    assert parse_scopes(["repository(plugin):a/b/c/d:pull repository:h:5000/x/y/z/i:"]) == [
        Scope("repository", "a/b/c/d", ("pull",)),
        Scope("repository", "h:5000/x/y/z/i", ()),
    ]
    assert parse_scopes([]) == []


def test_a_scope_without_a_name_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Invalid scope 'repository': expected type:name:actions"):
        parse_scopes(["repository"])


def test_the_key_is_created_once_and_its_certificate_matches(tmp_path: Path) -> None:
    first = load_signing_key(tmp_path)
    again = load_signing_key(tmp_path)
    assert first.key_id == again.key_id
    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", first.key_id)  # libtrust's key ID format
    assert (tmp_path / "registry" / "token.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(certificate_path(tmp_path).read_bytes())
    assert cert.public_key() == first.private_key.public_key()


def test_a_token_is_an_es256_jwt_with_the_granted_access(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path)
    access = [Scope("repository", "db/public/repo/img").claim(("pull",))]
    token = sign_token(
        key, subject="ALICE", audience="runbatch-registry", access=access, ttl_s=300, now=1_000_000
    )
    header, claims, signature = token.split(".")
    assert json.loads(_b64decode(header)) == {"typ": "JWT", "alg": "ES256", "kid": key.key_id}
    body = json.loads(_b64decode(claims))
    assert {k: v for k, v in body.items() if k != "jti"} == {
        "iss": "runbatch",
        "sub": "ALICE",
        "aud": "runbatch-registry",
        "nbf": 999_990,
        "iat": 1_000_000,
        "exp": 1_000_300,
        "access": [{"type": "repository", "name": "db/public/repo/img", "actions": ["pull"]}],
    }
    raw = _b64decode(signature)
    assert len(raw) == 64  # JWS ES256: r || s
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.private_key.public_key().verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
