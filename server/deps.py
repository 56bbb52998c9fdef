"""Request dependencies. Routes get the session, the caller and the control plane only from here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from runbatch.errors import AuthenticationError, PermissionDeniedError
from server.auth.privileges import authorize_endpoint
from server.auth.tokens import ROLE_SHARD, Principal, authenticate
from server.control_plane import ControlPlane

__all__ = ["ControlPlaneDep", "PrincipalDep", "SessionDep", "ShardPrincipalDep", "UserDep"]


def _control_plane(request: Request) -> ControlPlane:
    cp: ControlPlane = request.app.state.control_plane
    return cp


ControlPlaneDep = Annotated[ControlPlane, Depends(_control_plane)]


def _session(request: Request, cp: ControlPlaneDep) -> Iterator[Session]:
    # GET routes only read: on SQLite they then never wait behind a long write.
    factory = cp.read_sessionmaker if request.method in ("GET", "HEAD") else cp.sessionmaker
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def _principal(request: Request, cp: ControlPlaneDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError(
            "Missing bearer token: send 'Authorization: Bearer <token>'. The admin token of a new "
            "installation is in $RUNBATCH_HOME/token."
        )
    # A separate short session: the request's own transaction should not start with auth.
    with cp.read_sessionmaker() as session:
        principal = authenticate(session, secret.strip())
    authorize_endpoint(principal, request.scope.get("endpoint"))
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _user(principal: PrincipalDep) -> Principal:
    if principal.role == ROLE_SHARD:
        raise PermissionDeniedError("A runtime's shard token can only report on its own shard.")
    return principal


UserDep = Annotated[Principal, Depends(_user)]
ShardPrincipalDep = PrincipalDep
