"""Password login: verification in constant-ish time and a per-user failure throttle."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import timedelta

from sqlalchemy.orm import Session

from runbatch.errors import AuthenticationError
from server.auth.passwords import DUMMY_HASH, verify_password
from server.auth.tokens import ROLE_USER, issue_token
from server.auth.users import find_user
from server.db.tables import ApiTokenRow, UserRow, utcnow

__all__ = ["LoginThrottle", "check_login", "issue_login_token"]

_BAD_LOGIN = "Incorrect username or password was specified."


class LoginThrottle:
    """At most ``limit`` failed logins per user name in ``window_s``; then every attempt fails until
    the window passes (the same 401, so a guesser learns nothing), and each failure costs a delay."""

    def __init__(self, limit: int = 10, window_s: float = 300.0, delay_s: float = 0.25) -> None:
        self.limit, self.window_s, self.delay_s = limit, window_s, delay_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def blocked(self, username: str) -> bool:
        with self._lock:
            return len(self._recent(username.lower(), time.monotonic())) >= self.limit

    def failed(self, username: str) -> None:
        with self._lock:
            self._recent(username.lower(), time.monotonic()).append(time.monotonic())
        time.sleep(self.delay_s)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.lower(), None)


def check_login(session: Session, throttle: LoginThrottle, username: str, password: str) -> UserRow:
    """The user whose password this is; one 401 for every failure. Only reads: run it in a read-only
    session, so the failure delay holds no write lock."""
    user = find_user(session, username)
    # Verify even for an unknown user, so the answer takes as long either way.
    ok = (
        verify_password(password, user.password_hash if user is not None else DUMMY_HASH) and user is not None
    )
    if throttle.blocked(username) or not ok or user is None:
        throttle.failed(username)
        raise AuthenticationError(_BAD_LOGIN)
    throttle.succeeded(username)
    return user


def issue_login_token(session: Session, user_id: int, ttl: timedelta) -> tuple[ApiTokenRow, str]:
    """An ordinary API token of the user that expires after ``ttl``."""
    return issue_token(session, name="login", role=ROLE_USER, user_id=user_id, expires_at=utcnow() + ttl)
