"""Stages named in file columns (``InputSpec.column_handling``): checked before compute, handed to runtimes.

Each row of a file column holds a full stage path, and rows may name different stages,
internal or external. Before any shard starts, the column is scanned for the distinct stages
it names; each must exist (else the job is refused, naming the column and the stage). The job
record keeps the stages by name only; a shard's work order gets each one's storage and
credentials when the shard starts, as it does for the job's input stage.

A cell that is not a stage path at all is left to the runtime: it fails that row alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, NotFoundError, StagePathError
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from runbatch.wire.jobs import FileStage
from server.control_plane import ControlPlane
from server.stages import service as stages

__all__ = ["check_file_stages", "scan_message_stage_names", "scan_stage_names", "work_file_stages"]

# The stage part of a stage path: from '@' to the first '/' outside double quotes.
_STAGE_NAME = r"^\s*'?@(?P<stage>(?:\"[^\"]*\"|[^/\"'])+)"
_SCAN_BATCH_ROWS = 65_536


def scan_stage_names(storage: Storage, keys: list[str], columns: list[str]) -> dict[str, set[str]]:
    """The distinct stage names (as written, without '@') in each of ``columns`` of the Parquet files at ``keys``.

    Only the file columns are read, a batch at a time, so memory stays small whatever the input.
    """
    found: dict[str, set[str]] = {c: set() for c in columns}
    for key in keys:
        with storage.open_input_file(key) as f:
            parquet = pq.ParquetFile(f, **storage.parquet_read_options)
            for batch in parquet.iter_batches(columns=columns, batch_size=_SCAN_BATCH_ROWS):
                for column in columns:
                    values = batch.column(column)
                    if not pa.types.is_string(values.type):
                        values = values.cast(pa.string())
                    matched = pc.extract_regex(values, _STAGE_NAME)
                    names = pc.filter(matched, matched.is_valid()).field("stage")
                    found[column].update(str(n) for n in pc.unique(names).to_pylist() if n)
    return found


# A stage path in an OpenAI chat message's media part: "url": "@stage/..." or "data": "@stage/...".
_MESSAGE_STAGE_NAME = re.compile(r'"(?:url|data)"\s*:\s*"\s*@((?:[^/"\\])+)')


def scan_message_stage_names(storage: Storage, keys: list[str], columns: list[str]) -> dict[str, set[str]]:
    """The distinct stage names the media parts of chat messages columns name (JSON text or lists of dicts)."""
    found: dict[str, set[str]] = {c: set() for c in columns}
    for key in keys:
        with storage.open_input_file(key) as f:
            parquet = pq.ParquetFile(f, **storage.parquet_read_options)
            for batch in parquet.iter_batches(columns=columns, batch_size=_SCAN_BATCH_ROWS):
                for column in columns:
                    for cell in batch.column(column).to_pylist():
                        if cell is None:
                            continue
                        text = cell if isinstance(cell, str) else json.dumps(cell, default=str)
                        if "@" in text:
                            found[column].update(_MESSAGE_STAGE_NAME.findall(text))
    return found


def check_file_stages(
    session: Session,
    storage: Storage,
    keys: list[str],
    column_handling: dict[str, Any],
    context: dict[str, Any],
    message_columns: list[str] | None = None,
) -> list[dict[str, str]]:
    """Refuse a job whose file columns (or chat messages columns) name a stage that does not exist;
    return the stages they name."""
    if not column_handling and not message_columns:
        return []
    database, schema = context.get("database"), context.get("schema")
    refs: dict[tuple[str, str, str], dict[str, str]] = {}
    scanned = scan_stage_names(storage, keys, sorted(column_handling)) if column_handling else {}
    if message_columns:
        scanned.update(scan_message_stage_names(storage, keys, sorted(message_columns)))
    for column, names in scanned.items():
        for name in sorted(names):
            try:
                path = parse_stage_path(f"@{name}", database=database, schema=schema)
            except StagePathError:
                continue  # not a stage path: those rows fail on their own
            ref = (path.database, path.schema, path.stage)
            if ref in refs:
                continue
            try:
                stages.get_stage(session, *ref)
            except NotFoundError:
                raise InvalidArgumentError(
                    f"Column {column} ({'chat messages' if column in (message_columns or []) else 'column_handling'}) "
                    f"names files on stage '{path.stage_name}', which does not "
                    "exist or not authorized. Create the stage, or correct the stage paths in the column."
                ) from None
            refs[ref] = {"database": ref[0], "schema": ref[1], "stage": ref[2]}
    return [refs[r] for r in sorted(refs)]


def work_file_stages(session: Session, cp: ControlPlane, spec: dict[str, Any]) -> list[FileStage]:
    """The file stages of a job with their storage, for a shard's work order.

    A stage dropped since the job was accepted is left out: its rows then fail with STAGE_NOT_FOUND.
    """
    out = []
    for ref in spec.get("file_stages") or []:
        try:
            row = stages.get_stage(session, ref["database"], ref["schema"], ref["stage"])
        except NotFoundError:
            continue
        storage, root_key = stages.stage_storage(row, cp.storage, cp.secrets)
        out.append(
            FileStage(
                database=ref["database"],
                schema_=ref["schema"],
                stage=ref["stage"],
                storage=storage.config,
                root_key=root_key,
            )
        )
    return out
