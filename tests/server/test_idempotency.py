"""The Idempotency-Key store on a real SQLite database: one winner, replays, conflicts, release, expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from runbatch.errors import ConflictError, InvalidArgumentError
from server import idempotency
from server.control_plane import ControlPlane
from server.db.tables import IdempotencyKeyRow, utcnow


def _reserve(
    cp: ControlPlane, key: str = "k1", digest: str = "d1", wait_s: float = 5.0
) -> idempotency.Reservation:
    return idempotency.reserve(
        cp.sessionmaker,
        principal="user:1",
        key=key,
        method="POST",
        path="/api/v1/jobs",
        digest=digest,
        wait_s=wait_s,
    )


def test_concurrent_reservations_have_one_winner_and_the_rest_replay(cp: ControlPlane) -> None:
    results: list[idempotency.Reservation] = []
    lock, barrier = threading.Lock(), threading.Barrier(6)

    def one() -> None:
        barrier.wait()
        reservation = _reserve(cp)
        if reservation.replay is None:
            # The winner records its answer a little later; the others wait for it.
            with cp.sessionmaker() as session:
                idempotency.record_answer(session, reservation.key_id, 201, {"uuid": "job-1"})
                session.commit()
        with lock:
            results.append(reservation)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.replay is None for r in results) == [False] * 5 + [True]
    assert {(r.status_code, str(r.replay)) for r in results if r.replay is not None} == {
        (201, "{'uuid': 'job-1'}")
    }
    with cp.sessionmaker() as session:
        assert len(session.scalars(select(IdempotencyKeyRow)).all()) == 1


def test_another_body_conflicts_and_a_running_request_times_out(cp: ControlPlane) -> None:
    first = _reserve(cp)
    with pytest.raises(
        ConflictError, match="^Idempotency-Key 'k1' was already used with a different request"
    ):
        _reserve(cp, digest="d2")
    with pytest.raises(ConflictError, match="^A request with Idempotency-Key 'k1' is still being processed"):
        _reserve(cp, wait_s=0.3)
    # A failed request releases its key: the next one with it runs.
    idempotency.release(cp.sessionmaker, first.key_id)
    assert _reserve(cp, digest="d2").replay is None


def test_expired_and_abandoned_keys_are_taken_over(cp: ControlPlane) -> None:
    first = _reserve(cp)
    with cp.sessionmaker() as session:
        idempotency.record_answer(session, first.key_id, 201, {"uuid": "old"})
        session.execute(update(IdempotencyKeyRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    fresh = _reserve(cp)
    assert fresh.replay is None
    with cp.sessionmaker() as session:
        (row,) = session.scalars(select(IdempotencyKeyRow)).all()
        assert (row.status_code, row.response) == (None, None) and row.expires_at > utcnow()
    # Its server died before answering: after ten minutes the key is anybody's again.
    with cp.sessionmaker() as session:
        session.execute(update(IdempotencyKeyRow).values(created_at=utcnow() - timedelta(minutes=11)))
        session.commit()
    assert _reserve(cp, wait_s=0.3) == idempotency.Reservation(key_id=fresh.key_id)


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there", "é"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(
        InvalidArgumentError, match="^The Idempotency-Key header must be 1 to 255 printable ASCII"
    ):
        idempotency.check_key(key)
