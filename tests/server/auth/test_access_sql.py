"""Parsing of the user, role and grant statements, and the secrets and passwords they rely on."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.wire.auth import parse_duration
from server.auth.access_sql import AccessStatement
from server.auth.bootstrap import check_secret
from server.auth.grants import GrantTarget
from server.auth.login import LoginThrottle
from server.auth.passwords import hash_password, verify_password
from server.sql.statements import parse_statement


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "GRANT USAGE ON MODEL ml.public.m TO ROLE analyst",
            AccessStatement(
                "GRANT PRIVILEGES",
                privileges=("USAGE",),
                target=GrantTarget("MODEL", ("ML", "PUBLIC", "M")),
                role="ANALYST",
            ),
        ),
        (
            "grant usage on future models in schema db.s to role r;",
            AccessStatement(
                "GRANT PRIVILEGES",
                privileges=("USAGE",),
                target=GrantTarget("MODEL", ("DB", "S"), "FUTURE"),
                role="R",
            ),
        ),
        (
            "REVOKE USAGE ON ALL MODELS IN SCHEMA db.s FROM ROLE r",
            AccessStatement(
                "REVOKE PRIVILEGES",
                privileges=("USAGE",),
                target=GrantTarget("MODEL", ("DB", "S"), "ALL"),
                role="R",
            ),
        ),
        (
            "GRANT READ, WRITE ON STAGE s TO ROLE r",
            AccessStatement(
                "GRANT PRIVILEGES",
                privileges=("READ", "WRITE"),
                target=GrantTarget("STAGE", ("S",)),
                role="R",
            ),
        ),
        (
            "GRANT OWNERSHIP ON COMPUTE POOL p TO ROLE r COPY CURRENT GRANTS",
            AccessStatement(
                "GRANT PRIVILEGES",
                privileges=("OWNERSHIP",),
                target=GrantTarget("COMPUTE_POOL", ("P",)),
                role="R",
            ),
        ),
        (
            "CREATE USER IF NOT EXISTS alice PASSWORD = 'pw-12345678' DEFAULT_ROLE = analyst COMMENT = 'x'",
            AccessStatement(
                "CREATE USER",
                "ALICE",
                True,
                {"PASSWORD": "pw-12345678", "DEFAULT_ROLE": "ANALYST", "COMMENT": "x"},
            ),
        ),
        ('DROP ROLE IF EXISTS "Mixed"', AccessStatement("DROP ROLE", "Mixed", True)),
        ("GRANT ROLE analyst TO USER alice", AccessStatement("GRANT ROLE", "ALICE", role="ANALYST")),
        ("SHOW GRANTS TO ROLE analyst", AccessStatement("SHOW GRANTS TO ROLE", role="ANALYST")),
        ("SHOW GRANTS", AccessStatement("SHOW GRANTS TO USER")),
        ("SHOW USERS LIKE 'a%'", AccessStatement("SHOW USERS", like="a%")),
        (
            "SHOW FUTURE GRANTS IN SCHEMA db.s",
            AccessStatement("SHOW FUTURE GRANTS", target=GrantTarget("MODEL", ("DB", "S"), "FUTURE")),
        ),
    ],
)
def test_parse(sql: str, expected: AccessStatement) -> None:
    assert parse_statement(sql) == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "GRANT USAGE ON ALL STAGES IN SCHEMA d.s TO ROLE r",
            "SQL compilation error: runbatch grants on ALL MODELS IN SCHEMA only at position 19, found 'STAGES'.",
        ),
        (
            "CREATE USER u LOGIN_NAME = 'x'",
            "SQL compilation error: unsupported property LOGIN_NAME (supported: PASSWORD, DEFAULT_ROLE, COMMENT) "
            "at position 14, found 'LOGIN_NAME'.",
        ),
        (
            "GRANT USAGE ON MODELS m TO ROLE r",
            "SQL compilation error: expected MODEL, COMPUTE POOL, STAGE, IMAGE REPOSITORY, ALL MODELS IN SCHEMA or "
            "FUTURE MODELS IN SCHEMA at position 15, found 'MODELS'.",
        ),
    ],
)
def test_parse_errors(sql: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        parse_statement(sql)
    assert str(exc.value) == message


def test_grants_on_objects_runbatch_lacks_are_unsupported() -> None:
    with pytest.raises(UnsupportedError) as exc:
        parse_statement("GRANT SELECT ON TABLE t TO ROLE r")
    assert str(exc.value) == (
        "Privileges on TABLE objects are not supported: runbatch grants privileges on MODEL, COMPUTE POOL, STAGE, "
        "IMAGE REPOSITORY, and ALL or FUTURE MODELS IN SCHEMA (see docs/security.md)."
    )


def test_passwords_are_salted_scrypt() -> None:
    first, second = hash_password("a-long-passphrase"), hash_password("a-long-passphrase")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("a-long-passphrase", first) and verify_password("a-long-passphrase", second)
    assert not verify_password("a-long-passphrasE", first)
    assert not verify_password("anything", None) and not verify_password("anything", "sha256$abc")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("dev-admin-token-change-me-0123456789abcdef", "is a known default or placeholder value"),
        ("my-Placeholder-token-with-enough-length-1", "is a known default or placeholder value"),
        ("Xk9qLm2vT8", "is shorter than 32 characters"),
        ("abababababababababababababababab12", "repeats too few distinct characters to be random"),
    ],
)
def test_placeholder_secrets_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_secret("RUNBATCH_ADMIN_TOKEN", value)
    assert str(exc.value).startswith(f"RUNBATCH_ADMIN_TOKEN {problem}; the cluster refuses to start with it.")
    assert value not in str(exc.value)


def test_a_generated_secret_passes() -> None:
    check_secret("RUNBATCH_ADMIN_TOKEN", "Jq3vT8xWc1LmZp0RbN7sKdYf2HgA5eUo")
    check_secret("RUNBATCH_ADMIN_PASSWORD", "v7Qe-Lr2p-Xm9s")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45", 45), ("2W", 14 * 86400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0d", "-1h", "1y", "soon", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Cannot read the duration"):
        parse_duration(text)


def test_the_login_throttle_blocks_a_name_for_its_window() -> None:
    throttle = LoginThrottle(limit=2, window_s=0.5, delay_s=0.0)
    throttle.failed("Alice")
    assert not throttle.blocked("alice")
    throttle.failed("alice")
    assert throttle.blocked("ALICE") and not throttle.blocked("bob")
    time.sleep(0.6)
    assert not throttle.blocked("alice")
    throttle.failed("alice")
    throttle.succeeded("alice")
    throttle.failed("alice")
    assert not throttle.blocked("alice")  # a success clears the count
