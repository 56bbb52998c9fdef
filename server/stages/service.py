"""Stages: rows in the metadata database, files under ``stages/<db>/<schema>/<stage>/`` in storage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import format_datetime
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified
from runbatch.stage.paths import StagePath, compile_pattern, name_key, pattern_matches, stage_root_key
from runbatch.stage.storage import FileEntry, Storage, StorageConfig, open_storage
from runbatch.wire.resources import StageFilePublic
from server.db.tables import StageRow
from server.resources.service import get_schema
from server.secrets import SecretBox

__all__ = [
    "ResolvedStage",
    "create_stage",
    "drop_stage",
    "get_stage",
    "list_files",
    "list_stages",
    "name_key",
    "resolve_stage_path",
    "stage_storage",
    "stage_root_key",
]


@dataclass(frozen=True)
class ResolvedStage:
    """A stage path with the storage its files live in."""

    path: StagePath
    storage: Storage
    root_key: str

    @property
    def key(self) -> str:
        return f"{self.root_key}/{self.path.path}" if self.path.path else self.root_key

    def key_for(self, relative_to_stage: str) -> str:
        return f"{self.root_key}/{relative_to_stage}" if relative_to_stage else self.root_key

    def relative(self, key: str) -> str:
        """The path of a storage key relative to the stage root."""
        return key[len(self.root_key) + 1 :] if self.root_key else key

    def list_name(self, relative_to_stage: str) -> str:
        """The file's name as LIST shows it."""
        # Snowflake names internal files "<stage>/<path>" and external ones by their full URL.
        external = self.external_url
        return (
            f"{external}/{relative_to_stage}"
            if external
            else f"{self.path.stage.lower()}/{relative_to_stage}"
        )

    def matches(self, regex: re.Pattern[str] | None, key: str) -> bool:
        """Whether the file at storage ``key`` matches a PATTERN (None matches everything)."""
        if regex is None:
            return True
        rel = self.relative(key)
        return pattern_matches(regex, list_name=self.list_name(rel), stage_relative=rel)

    @property
    def external_url(self) -> str | None:
        url = self.storage.config.url
        return url if not url.startswith("file:") and not self.root_key else None


def get_stage(session: Session, database: str, schema: str, name: str) -> StageRow:
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(StageRow).where(StageRow.schema_id == sch.id, StageRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Stage '{qualified(database, schema, name)}' does not exist or not authorized.")
    return row


def list_stages(session: Session, database: str, schema: str) -> list[StageRow]:
    sch = get_schema(session, database, schema)
    return list(session.scalars(select(StageRow).where(StageRow.schema_id == sch.id).order_by(StageRow.name)))


def create_stage(
    session: Session,
    database: str,
    schema: str,
    name: str,
    *,
    owner: str,
    comment: str | None = None,
    if_not_exists: bool = False,
    or_replace: bool = False,
    url: str | None = None,
    endpoint: str | None = None,
    region: str | None = None,
    credentials: dict[str, str] | None = None,
    secrets: SecretBox | None = None,
) -> tuple[StageRow, bool]:
    """Create an internal stage, or an external one over ``url`` (its credentials stored encrypted).

    With OR REPLACE the caller purges an internal stage's old files after commit.
    """
    sch = get_schema(session, database, schema)
    existing = session.scalars(
        select(StageRow).where(StageRow.schema_id == sch.id, StageRow.name == name)
    ).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        if not or_replace:
            raise AlreadyExistsError(f"Stage '{qualified(database, schema, name)}' already exists.")
        session.delete(existing)
        session.flush()
    row = StageRow(schema_id=sch.id, name=name, owner=owner, comment=comment)
    if url is not None:
        _check_external_url(url, endpoint)
        row.url, row.endpoint, row.region = url.rstrip("/"), endpoint, region
        if credentials:
            assert secrets is not None
            unknown = sorted(set(credentials) - {"AWS_KEY_ID", "AWS_SECRET_KEY", "AWS_TOKEN"})
            if unknown:
                raise InvalidArgumentError(
                    f"Unknown CREDENTIALS key(s) {unknown}; use AWS_KEY_ID and AWS_SECRET_KEY (and AWS_TOKEN)."
                )
            row.credentials = secrets.encrypt(
                {
                    "access_key": credentials.get("AWS_KEY_ID"),
                    "secret_key": credentials.get("AWS_SECRET_KEY"),
                    "session_token": credentials.get("AWS_TOKEN"),
                }
            )
    session.add(row)
    session.flush()
    return row, True


def _check_external_url(url: str, endpoint: str | None) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "s3compat") or not parsed.netloc:
        raise InvalidArgumentError(
            f"External stage URL {url!r} is not supported: use URL = 's3://bucket/path' (or 's3compat://bucket/path' "
            "with ENDPOINT = 'host:port')."
        )
    if parsed.scheme == "s3compat" and not endpoint:
        raise InvalidArgumentError("An s3compat:// stage needs ENDPOINT = 'host:port'.")


def stage_storage(row: StageRow, default: Storage, secrets: SecretBox) -> tuple[Storage, str]:
    """The storage of a stage and the key prefix of its files there."""
    if row.url is None:
        schema = row.schema
        return default, stage_root_key(schema.database.name, schema.name, row.name)
    creds = secrets.decrypt(row.credentials) if row.credentials else {}
    endpoint = row.endpoint
    if endpoint and "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    config = StorageConfig(
        url="s3://" + row.url.split("://", 1)[1],
        endpoint_url=endpoint,
        region=row.region,
        access_key=creds.get("access_key"),
        secret_key=creds.get("secret_key"),
        session_token=creds.get("session_token"),
    )
    return open_storage(config), ""


def drop_stage(session: Session, database: str, schema: str, name: str, *, if_exists: bool = False) -> bool:
    try:
        row = get_stage(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return False
        raise
    session.delete(row)
    session.flush()
    return True


def resolve_stage_path(
    session: Session, storage: Storage, path: StagePath, secrets: SecretBox
) -> ResolvedStage:
    row = get_stage(session, path.database, path.schema, path.stage)
    stage_store, root_key = stage_storage(row, storage, secrets)
    return ResolvedStage(path, stage_store, root_key)


def list_files(
    stage: ResolvedStage, *, prefix_is_dir: bool, pattern: str | None = None, with_md5: bool = True
) -> list[StageFilePublic]:
    """Rows of ``LIST``: ``stage/path`` names (stage in lower case, as Snowflake prints them)."""
    prefix = stage.key + "/" if (prefix_is_dir or not stage.path.path) else stage.key
    regex = compile_pattern(pattern)
    rows: list[StageFilePublic] = []
    for entry in stage.storage.list(prefix):
        rel = stage.relative(entry.key)
        if _is_internal(rel):
            continue
        if regex is not None and not pattern_matches(
            regex, list_name=stage.list_name(rel), stage_relative=rel
        ):
            continue
        rows.append(_file_row(stage, entry, rel, with_md5))
    return rows


def _is_internal(rel: str) -> bool:
    # Half-written uploads live next to their final name until renamed.
    return ".__tmp_" in rel.rsplit("/", 1)[-1]


def _file_row(stage: ResolvedStage, entry: FileEntry, rel: str, with_md5: bool) -> StageFilePublic:
    return StageFilePublic(
        name=stage.list_name(rel),
        path=rel,
        size=entry.size,
        md5=stage.storage.md5(entry) if with_md5 else "",
        last_modified=format_datetime(entry.last_modified, usegmt=True),
    )
