"""``Idempotency-Key`` on job-creating POSTs: a retried request gets the first answer, never a second job.

Insert first, then work: the key row is committed (unique on principal and key) before the job is
created, so of concurrent retries exactly one wins the insert; the others wait for the winner's
recorded answer and replay it. The answer is written in the same transaction as the job, so a job
never exists without it. A failed request releases its key, so a retry after an error tries again.

This module commits its own short transactions: the key must be visible to concurrent retries
before the request's work starts, which one route transaction cannot do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request, Response
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from runbatch.errors import ConflictError, InvalidArgumentError
from server.auth.tokens import Principal
from server.db.tables import IdempotencyKeyRow, utcnow

__all__ = [
    "HEADER",
    "KEY_TTL",
    "KeyHeader",
    "answering",
    "Reservation",
    "caller_scope",
    "check_key",
    "fingerprint",
    "record_answer",
    "release",
    "reserve",
    "reserve_request",
]

HEADER = "Idempotency-Key"
# The header as a route parameter of the POSTs that create something (jobs, DAG runs).
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Any unique value per logical request (e.g. a UUID): a retry with the same key and body "
        "gets the first answer instead of creating a second job or run. Kept 24 hours.",
    ),
]
KEY_TTL = timedelta(hours=24)
# A key whose request never answered (its server died mid-request) is taken over after this.
_ABANDONED_AFTER = timedelta(minutes=10)
log = logging.getLogger("runbatch.server")
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: ``replay`` holds the first answer when this is a retry."""

    key_id: int
    replay: dict[str, Any] | None = None
    status_code: int | None = None


def reserve_request(
    sessions: sessionmaker[Session],
    request: Request,
    response: Response,
    principal: Principal,
    key: str | None,
    body: Any,
) -> Reservation | None:
    """``reserve`` for a route: None without a key; a replay is marked on ``response``."""
    if key is None:
        return None
    reservation = reserve(
        sessions,
        principal=caller_scope(principal),
        key=check_key(key),
        method=request.method,
        path=request.url.path,
        digest=fingerprint(body),
    )
    if reservation.replay is not None:
        response.headers["Idempotent-Replayed"] = "true"
    return reservation


@contextmanager
def answering(
    session: Session, sessions: sessionmaker[Session], reservation: Reservation | None
) -> Iterator[Callable[[int, dict[str, Any]], None]]:
    """The request's work under a reserved key. The work calls what this yields with its answer
    before it commits, so the answer lands in the work's own transaction (what it created never
    exists without the answer its retries replay); a failure rolls back and releases the key, so a
    retry runs the request again."""

    def answer(status_code: int, body: dict[str, Any]) -> None:
        if reservation is not None:
            record_answer(session, reservation.key_id, status_code, body)

    try:
        yield answer
    except BaseException:
        if reservation is not None:
            session.rollback()
            release(sessions, reservation.key_id)
        raise


def caller_scope(principal: Principal) -> str:
    """Whose keys these are: a user's (all their tokens), else the token's own."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    return f"name:{principal.name}"


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidArgumentError(
            f"The {HEADER} header must be 1 to 255 printable ASCII characters without spaces; send a fresh "
            "random value (e.g. a UUID) per logical request and the same value on its retries."
        )
    return key


def fingerprint(body: Any) -> str:
    """SHA-256 of the request body's canonical JSON: retries must send the same request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _insert(session: Session, principal: str, key: str, method: str, path: str, digest: str) -> int | None:
    now = utcnow()
    # Expired keys go first (any caller's: the index on expires_at keeps this cheap).
    session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at <= now))
    row = IdempotencyKeyRow(
        principal=principal,
        key=key,
        method=method,
        path=path,
        request_hash=digest,
        created_at=now,
        expires_at=now + KEY_TTL,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return row.id


def _existing(session: Session, principal: str, key: str) -> IdempotencyKeyRow | None:
    return session.scalars(
        select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.principal == principal, IdempotencyKeyRow.key == key
        )
    ).one_or_none()


def reserve(
    sessions: sessionmaker[Session],
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    digest: str,
    wait_s: float = 60.0,
) -> Reservation:
    """Claim ``key`` for this request, or return the answer a previous request with it got.

    Raises ``ConflictError`` when the key was used for another request, or when the request that
    holds it is still running after ``wait_s`` seconds.
    """
    deadline = time.monotonic() + wait_s
    while True:
        with sessions() as session:
            key_id = _insert(session, principal, key, method, path, digest)
            if key_id is not None:
                return Reservation(key_id=key_id)
            row = _existing(session, principal, key)
            if row is None:
                continue  # released (its request failed) or expired between our insert and read
            if row.request_hash != digest or row.method != method or row.path != path:
                raise ConflictError(
                    f"{HEADER} {key!r} was already used with a different request ({row.method} {row.path} with "
                    "another body). Send a new key for a new request; reuse a key only to retry the same request."
                )
            if row.status_code is not None and row.response is not None:
                return Reservation(key_id=row.id, replay=row.response, status_code=row.status_code)
            if utcnow() - row.created_at > _ABANDONED_AFTER:
                taken = session.execute(
                    update(IdempotencyKeyRow)
                    .where(IdempotencyKeyRow.id == row.id, IdempotencyKeyRow.created_at == row.created_at)
                    .values(created_at=utcnow())
                )
                session.commit()
                if getattr(taken, "rowcount", 0) == 1:
                    return Reservation(key_id=row.id)
                continue
        if time.monotonic() > deadline:
            raise ConflictError(
                f"A request with {HEADER} {key!r} is still being processed; retry it in a few seconds to get its answer."
            )
        time.sleep(0.1)


def record_answer(session: Session, key_id: int, status_code: int, body: dict[str, Any]) -> None:
    """Store the answer in the request's own transaction (the caller commits it with the job)."""
    session.execute(
        update(IdempotencyKeyRow)
        .where(IdempotencyKeyRow.id == key_id)
        .values(status_code=status_code, response=body)
    )
    session.flush()


def release(sessions: sessionmaker[Session], key_id: int) -> None:
    """Forget a key whose request failed, so that a retry runs the request again.

    Best effort: when the database itself failed, the key is taken over after ``_ABANDONED_AFTER``.
    """
    try:
        with sessions() as session:
            session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.id == key_id, IdempotencyKeyRow.status_code.is_(None)
                )
            )
            session.commit()
    except SQLAlchemyError as exc:
        log.warning("could not release idempotency key %s: %s", key_id, exc.__class__.__name__)
