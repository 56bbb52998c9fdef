"""Encryption at rest for credentials the control plane must keep (external stages)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from runbatch.errors import InternalError
from server.settings import ServerSettings

__all__ = ["SecretBox"]


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) over JSON values, keyed from RUNBATCH_SECRET_KEY."""

    def __init__(self, key_material: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest())
        self._fernet = Fernet(key)

    @classmethod
    def for_settings(cls, settings: ServerSettings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value())
        path = settings.home / "secret.key"
        if not path.exists():
            settings.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.urlsafe_b64encode(os.urandom(32)).decode())
        return cls(path.read_text().strip())

    def encrypt(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise InternalError(
                "Stored credentials cannot be decrypted: RUNBATCH_SECRET_KEY differs from the key they were "
                "stored with. Use the original key, or recreate the stage with its credentials."
            ) from None
        return value
