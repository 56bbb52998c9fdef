"""The key that signs registry tokens, and the self-signed certificate the registry trusts.

Both live in ``$RUNBATCH_HOME/registry/`` (``token.key``, mode 0600, and ``token.crt``) and are
created on first use. The registry is configured with ``auth.token.rootcertbundle`` pointing at
``token.crt``; it identifies the key by the ``kid`` of a token's header, which is the libtrust key
ID of the certificate's public key (the only key-naming scheme distribution's token auth accepts
besides a certificate chain in every token). Every control plane replica must share the folder.

``python -m server.image_registry.keys <home>`` creates them if needed and prints the certificate's
path (``scripts/registry`` does this before it starts the registry).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["SigningKey", "certificate_path", "load_signing_key"]

_FOLDER = "registry"
_KEY = "token.key"
_CERT = "token.crt"
_VALID_DAYS = 3650
# How long a process that lost the race to create the key waits for the winner's certificate.
_CERT_WAIT_S = 10.0


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey
    key_id: str
    certificate_pem: bytes


def certificate_path(home: Path) -> Path:
    return home / _FOLDER / _CERT


def _libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """libtrust's KeyID: the SHA-256 of the DER public key, first 240 bits, base32 in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Write ``path`` only if it does not exist yet (atomically: a concurrent creator wins, not both)."""
    # Unique per call: two threads of one process may create the pair at once.
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink()


def _create(folder: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if not _write_new(folder / _KEY, pem, 0o600):
        return  # another process created the key first; its certificate follows
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runbatch registry token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_new(folder / _CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def load_signing_key(home: Path) -> SigningKey:
    """The signing key of this installation, created on first use."""
    folder = home / _FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / _KEY).exists():
        _create(folder)
    key = serialization.load_pem_private_key((folder / _KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(
            f"{folder / _KEY} is not an EC key; remove it (and {_CERT}) to generate a new pair."
        )
    cert_path = folder / _CERT
    deadline = time.monotonic() + _CERT_WAIT_S
    # The process that wrote the key writes its certificate a moment later.
    while not cert_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not cert_path.exists():
        raise RuntimeError(
            f"{cert_path} is missing while {folder / _KEY} exists; remove the key to generate a new pair."
        )
    return SigningKey(key, _libtrust_key_id(key.public_key()), cert_path.read_bytes())


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m server.image_registry.keys <RUNBATCH_HOME>\n")
        return 2
    home = Path(argv[0])
    load_signing_key(home)
    sys.stdout.write(f"{certificate_path(home)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
