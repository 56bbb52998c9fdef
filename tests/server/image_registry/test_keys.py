"""The registry token signing key and its certificate, created once however many callers race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.image_registry import keys


def test_threads_creating_the_key_at_once_all_get_the_one_that_was_written(tmp_path: Path) -> None:
    start = threading.Barrier(8)

    def load(_: int) -> str:
        start.wait()
        return keys.load_signing_key(tmp_path).key_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(load, range(8)))
    assert ids == {keys.load_signing_key(tmp_path).key_id}
    assert sorted(p.name for p in (tmp_path / "registry").iterdir()) == ["token.crt", "token.key"]
    assert (tmp_path / "registry" / "token.key").stat().st_mode & 0o777 == 0o600


def test_a_caller_that_finds_the_key_waits_for_its_certificate(tmp_path: Path) -> None:
    """Between the winner writing the key and its certificate, another caller waits rather than failing."""
    keys.load_signing_key(tmp_path)
    cert = tmp_path / "registry" / "token.crt"
    pem = cert.read_bytes()
    cert.unlink()
    timer = threading.Timer(0.3, cert.write_bytes, args=(pem,))
    timer.start()
    try:
        loaded = keys.load_signing_key(tmp_path)
    finally:
        timer.join()
    assert loaded.certificate_pem == pem
    key = serialization.load_pem_private_key(
        (tmp_path / "registry" / "token.key").read_bytes(), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
