"""Mirror of ``snowflake.ml.utils.stage_file``: stage file listings as DataFrames of full stage paths.

The DataFrame these return is what ``run_batch`` takes for file inputs, one
``@DB.SCHEMA.STAGE/path/file`` per row, with ``InputSpec(column_handling=...)`` naming the column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbatch.identifiers import format_identifier
from runbatch.snowpark.types import StringType, StructField, StructType

if TYPE_CHECKING:
    from runbatch.snowpark.dataframe import DataFrame
    from runbatch.snowpark.session import Session

__all__ = ["list_stage_files", "list_stage_files_from_directory_tables"]


def _escape_single_quotes(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def list_stage_files(
    session: Session,
    stage_path: str,
    *,
    pattern: str | None = None,
    column_name: str = "FILE_PATH",
) -> DataFrame:
    """List files on a stage (``LIST``) as a DataFrame with one column of fully qualified stage paths.

    Args:
        session: Active session.
        stage_path: Stage path, e.g. ``"@DB.SCHEMA.STAGE"`` or ``"@DB.SCHEMA.STAGE/subdir"``.
        pattern: Optional regular expression the files must match (e.g. ``".*\\.jpg"``).
        column_name: Name of the output column. Defaults to ``"FILE_PATH"``.

    Returns:
        A DataFrame with one STRING column holding ``<stage>/<path from the stage root>`` per file.

    Raises:
        RuntimeError: If the LIST command fails or returns unexpected results.
    """
    if not stage_path.startswith("@"):
        stage_path = "@" + stage_path
    sql = f"LIST {stage_path}"
    if pattern:
        sql += f" PATTERN = '{_escape_single_quotes(pattern)}'"
    try:
        list_results = session.sql(sql).collect()
    except Exception as e:
        raise RuntimeError(f"Failed to list stage location '{stage_path}': {e}") from e

    fully_qualified_stage = stage_path.split("/", 1)[0]
    external_root: str | None = None
    file_paths: list[tuple[str]] = []
    for row in list_results:
        row_dict = row.as_dict()
        name = row_dict.get("name")
        if not name:
            raise RuntimeError(f"Unexpected LIST result format, missing 'name' column: {row_dict}")
        if "://" in name:
            # An external stage lists full URLs. Snowflake strips the scheme and bucket; a stage whose
            # URL has a folder (s3://bucket/folder/) would then get that folder twice, so the
            # stage's own URL is stripped when it is known.
            after_scheme = name.split("://", 1)[1]
            if external_root is None:
                external_root = _external_root(session, fully_qualified_stage)
            if external_root and after_scheme.startswith(external_root + "/"):
                relative_path = after_scheme[len(external_root) + 1 :]
            else:
                slash_idx = after_scheme.find("/")
                if slash_idx == -1 or slash_idx == len(after_scheme) - 1:
                    raise RuntimeError(f"Unexpected LIST result format, invalid 'name' value: {name}")
                relative_path = after_scheme[slash_idx + 1 :]
            if not relative_path:
                raise RuntimeError(f"Unexpected LIST result format, invalid 'name' value: {name}")
        else:
            try:
                _, relative_path = name.split("/", 1)
            except ValueError:
                raise RuntimeError(f"Unexpected LIST result format, invalid 'name' value: {name}") from None
        file_paths.append((f"{fully_qualified_stage}/{relative_path}",))

    return session.create_dataframe(file_paths, schema=StructType([StructField(column_name, StringType())]))


def _external_root(session: Session, stage: str) -> str:
    """``bucket/folder`` of an external stage's URL ('' when it cannot be looked up)."""
    try:
        path = session._conn.stage_path(stage)
        like = path.stage.replace("\\", "\\\\").replace("'", "\\'")
        rows = session.sql(
            f"SHOW STAGES LIKE '{like}' IN SCHEMA {format_identifier(path.database)}."
            f"{format_identifier(path.schema)}"
        ).collect()
    except Exception:  # noqa: BLE001 - then Snowflake's own rule applies
        return ""
    for row in rows:
        url = str(row.as_dict().get("url") or "")
        if row.as_dict().get("name") == path.stage and "://" in url:
            return url.split("://", 1)[1].rstrip("/")
    return ""


def list_stage_files_from_directory_tables(
    session: Session,
    stage_name: str,
    *,
    column_name: str = "FILE_PATH",
    refresh: bool = True,
) -> DataFrame:
    """List every file of a stage (its directory table) as a DataFrame of fully qualified stage paths.

    runbatch stages have no separate directory table to go stale: the listing is always current, so
    ``refresh`` is accepted and needs no ``ALTER STAGE ... REFRESH``. The files are listed when this is
    called (Snowflake's DataFrame is lazy and lists when it is read).

    Args:
        session: Active session.
        stage_name: A bare stage reference such as ``"@DB.SCHEMA.STAGE"`` (no subpath).
        column_name: Name of the output column. Defaults to ``"FILE_PATH"``.
        refresh: Accepted for compatibility (see above).

    Returns:
        A DataFrame with one STRING column holding ``<stage_name>/<RELATIVE_PATH>`` per file.

    Raises:
        ValueError: If ``stage_name`` contains a subpath.
    """
    if not stage_name.startswith("@"):
        stage_name = "@" + stage_name
    if "/" in stage_name[1:]:
        raise ValueError(
            f"stage_name must be a bare stage reference like '@DB.SCHEMA.STAGE' "
            f"without a subpath, got: {stage_name}"
        )
    del refresh  # nothing to refresh: see the docstring
    return list_stage_files(session, stage_name, column_name=column_name)
