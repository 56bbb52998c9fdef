"""Registry tokens: the JWTs of distribution's token authentication (``auth: token`` in its config).

A client (``docker login``, ``docker push``) that the registry answers 401 asks the realm, the
control plane's ``GET /api/v1/registry/token?service=...&scope=repository:<name>:pull,push``, with
its runbatch credentials; the control plane answers a token signed with the installation's key that
lists the actions it grants on each named repository, and the registry checks the signature, the
issuer, the audience (the registry's ``service``), the lifetime and the actions.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from runbatch.errors import InvalidArgumentError
from server.image_registry.keys import SigningKey

__all__ = ["ISSUER", "KNOWN_ACTIONS", "Scope", "parse_scopes", "sign_token"]

# The registry's auth.token.issuer must be this.
ISSUER = "runbatch"
# The actions distribution asks tokens for; any other is never granted.
KNOWN_ACTIONS = ("pull", "push", "delete", "*")


@dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` item of a token request (``repository:db/sch/repo/img:pull,push``)."""

    type: str
    name: str
    actions: tuple[str, ...] = field(default=())

    def claim(self, granted: tuple[str, ...]) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(granted)}


def parse_scopes(values: list[str]) -> list[Scope]:
    """The scopes of a token request; a client may send several ``scope`` parameters, each holding
    one or more space-separated items. The name may hold ':' (never the type or the actions)."""
    scopes: list[Scope] = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if not kind or not name:
                raise InvalidArgumentError(
                    f"Invalid scope {item!r}: expected type:name:actions, e.g. repository:db/schema/repo/image:pull."
                )
            # A resource class (``repository(plugin)``) does not change what is granted here.
            kind = kind.split("(", 1)[0]
            scopes.append(Scope(kind, name, tuple(a for a in actions.split(",") if a)))
    return scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_token(
    key: SigningKey,
    *,
    subject: str,
    audience: str,
    access: list[dict[str, Any]],
    ttl_s: int,
    now: float | None = None,
) -> str:
    """An ES256 JWT, signed as JWS wants it (r || s, not DER), naming the key by its libtrust ``kid``."""
    issued = int(now if now is not None else time.time())
    header = {"typ": "JWT", "alg": "ES256", "kid": key.key_id}
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        # A little slack for clocks a few seconds apart (the registry allows some too).
        "nbf": issued - 10,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    der = key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
