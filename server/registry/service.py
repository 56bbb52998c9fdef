"""Models and versions: metadata rows plus immutable artifact folders under ``registry/`` in storage."""

from __future__ import annotations

import io
import random
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch import archive
from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified, resolve_identifier
from runbatch.stage.storage import Storage
from runbatch.wire.registry import FunctionPublic, ModelPublic, ModelVersionPublic
from server.db.tables import DatabaseRow, ModelAliasRow, ModelRow, ModelTagRow, ModelVersionRow, SchemaRow
from server.resources.service import get_database, get_schema
from server.stages.service import name_key

__all__ = [
    "SYSTEM_ALIASES",
    "ArtifactUpload",
    "StoredArtifact",
    "add_version",
    "check_new_version",
    "delete_model",
    "delete_version",
    "find_models",
    "functions_of",
    "get_model",
    "get_version",
    "list_models",
    "model_public",
    "resolve_version",
    "set_alias",
    "store_artifact",
    "unset_alias",
    "version_public",
]

SYSTEM_ALIASES = ("DEFAULT", "FIRST", "LAST")


def model_key(database: str, schema: str, model: str) -> str:
    return f"registry/{name_key(database)}/{name_key(schema)}/{name_key(model)}"


def get_model(session: Session, database: str, schema: str, name: str) -> ModelRow:
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(ModelRow).where(ModelRow.schema_id == sch.id, ModelRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Unable to find model {qualified(database, schema, name)}")
    return row


def list_models(session: Session, database: str, schema: str) -> list[ModelRow]:
    sch = get_schema(session, database, schema)
    return list(session.scalars(select(ModelRow).where(ModelRow.schema_id == sch.id).order_by(ModelRow.name)))


def find_models(
    session: Session, *, database: str | None = None, schema: str | None = None
) -> list[ModelRow]:
    """Models of the account, of a database or of a schema, by database, schema and name (as SHOW MODELS)."""
    query = select(ModelRow).join(ModelRow.schema).join(SchemaRow.database)
    if database is not None and schema is not None:
        query = query.where(ModelRow.schema_id == get_schema(session, database, schema).id)
    elif database is not None:
        query = query.where(SchemaRow.database_id == get_database(session, database).id)
    return list(session.scalars(query.order_by(DatabaseRow.name, SchemaRow.name, ModelRow.name)))


def _by_name(model: ModelRow, version: str) -> ModelVersionRow | None:
    return next((v for v in model.versions if v.name == version), None)


def resolve_version(model: ModelRow, version_or_alias: str) -> ModelVersionRow:
    """Aliases first (system, then user), then version names, as Snowflake's ``Model.version``."""
    if model.versions:
        ordered = sorted(model.versions, key=lambda v: (v.created_on, v.id))
        if version_or_alias == "FIRST":
            return ordered[0]
        if version_or_alias == "LAST":
            return ordered[-1]
        if version_or_alias == "DEFAULT" and model.default_version:
            found = _by_name(model, model.default_version)
            if found is not None:
                return found
    alias = next((a for a in model.aliases if a.alias == version_or_alias), None)
    if alias is not None:
        found = _by_name(model, alias.version_name)
        if found is not None:
            return found
    found = _by_name(model, version_or_alias)
    if found is None:
        fqn = qualified(model.schema.database.name, model.schema.name, model.name)
        raise NotFoundError(
            f"Unable to find version or alias with name {qualified(version_or_alias)} in model {fqn}"
        )
    return found


def get_version(session: Session, database: str, schema: str, model: str, version: str) -> ModelVersionRow:
    return resolve_version(get_model(session, database, schema, model), version)


# -- adding versions ------------------------------------------------------------------------------

_ADJECTIVES = (
    "able",
    "amber",
    "ancient",
    "autumn",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "clever",
    "cool",
    "cosmic",
    "crisp",
    "curious",
    "dapper",
    "daring",
    "eager",
    "early",
    "easy",
    "epic",
    "fair",
    "fancy",
    "fast",
    "fearless",
    "fine",
    "fluffy",
    "frosty",
    "gentle",
    "giant",
    "glad",
    "golden",
    "grand",
    "happy",
    "hardy",
    "hidden",
    "honest",
    "humble",
    "icy",
    "jolly",
    "keen",
    "kind",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "mighty",
    "misty",
    "modest",
    "neat",
    "nimble",
    "noble",
    "odd",
    "patient",
    "plucky",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rare",
    "ready",
    "rosy",
    "royal",
    "rustic",
    "sandy",
    "sharp",
    "shiny",
    "silent",
    "silver",
    "simple",
    "sleek",
    "smart",
    "snowy",
    "solid",
    "spicy",
    "steady",
    "stormy",
    "sunny",
    "super",
    "swift",
    "tidy",
    "tiny",
    "tough",
    "vivid",
    "warm",
    "wild",
    "wise",
    "witty",
    "young",
    "zesty",
)
_ANIMALS = (
    "badger",
    "bat",
    "bear",
    "beaver",
    "bison",
    "boar",
    "camel",
    "cat",
    "cheetah",
    "cobra",
    "crab",
    "crane",
    "crow",
    "deer",
    "dingo",
    "dog",
    "dolphin",
    "donkey",
    "dove",
    "duck",
    "eagle",
    "eel",
    "elk",
    "emu",
    "falcon",
    "ferret",
    "finch",
    "fox",
    "frog",
    "gecko",
    "goat",
    "goose",
    "gorilla",
    "hare",
    "hawk",
    "heron",
    "horse",
    "hyena",
    "ibis",
    "iguana",
    "jackal",
    "jaguar",
    "koala",
    "lemur",
    "leopard",
    "lion",
    "lizard",
    "llama",
    "lynx",
    "mole",
    "moose",
    "moth",
    "mouse",
    "newt",
    "otter",
    "owl",
    "panda",
    "panther",
    "parrot",
    "pelican",
    "penguin",
    "pig",
    "pony",
    "puma",
    "quail",
    "rabbit",
    "raven",
    "robin",
    "salmon",
    "seal",
    "shark",
    "sheep",
    "sloth",
    "snail",
    "swan",
    "tiger",
    "toad",
    "trout",
    "turtle",
    "walrus",
    "whale",
    "wolf",
    "yak",
    "zebra",
)


def generate_version_name(existing: set[str]) -> str:
    """``<adjective>_<animal>_<1-4>`` resolved to upper case, avoiding existing names."""
    for _ in range(1000):
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_ANIMALS)}_{random.randint(1, 4)}".upper()
        if name not in existing:
            return name
    raise RuntimeError("Random version name generation failed.")


@dataclass(frozen=True)
class ArtifactUpload:
    """A model version folder arriving as an uncompressed tar stream."""

    stream: IO[bytes]


@dataclass(frozen=True)
class StoredArtifact:
    """A version folder stored under ``key``, with its model.yaml (and MANIFEST.yml) parsed."""

    key: str
    spec: dict[str, Any]


def _extract(storage: Storage, prefix: str, upload: ArtifactUpload) -> dict[str, bytes]:
    """Copy the tar into storage under ``prefix``; returns MANIFEST.yml and model/model.yaml bodies.

    Members are checked by runbatch.archive (regular files, paths inside the archive),
    so an archive cannot write outside the version folder or create links.
    """
    wanted = {"MANIFEST.yml": b"", "model/model.yaml": b""}
    with tarfile.open(fileobj=upload.stream, mode="r|") as tar:
        for member in tar:
            try:
                rel = archive.check_member(member)
            except ValueError as exc:
                raise InvalidArgumentError(str(exc)) from exc
            if member.isdir():
                continue
            key = f"{prefix}/{rel}"
            source = tar.extractfile(member)
            assert source is not None
            if rel in wanted:
                data = source.read()
                wanted[rel] = data
                storage.write_bytes(key, data)
            else:
                storage.write_stream(key, _chunks(source))
    missing = [k for k, v in wanted.items() if not v]
    if missing:
        raise InvalidArgumentError(
            f"The model archive lacks {', '.join(missing)}; it was not made by log_model."
        )
    return wanted


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(1 << 20):
        yield chunk


def check_new_version(
    session: Session, database: str, schema: str, model_name: str, version_name: str | None
) -> None:
    """Refuse a version that cannot be added, before its (possibly large) files are stored."""
    sch = get_schema(session, database, schema)
    if (
        version_name is not None
        and session.scalars(
            select(ModelVersionRow.id)
            .join(ModelVersionRow.model)
            .where(
                ModelRow.schema_id == sch.id,
                ModelRow.name == model_name,
                ModelVersionRow.name == version_name,
            )
        ).first()
    ):
        raise _version_exists(model_name, version_name)


def _version_exists(model_name: str, version_name: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f"Model {qualified(model_name)} version {qualified(version_name)} already existed. "
        "To auto-generate `version_name`, skip that argument."
    )


def store_artifact(
    storage: Storage, database: str, schema: str, model_name: str, upload: ArtifactUpload
) -> StoredArtifact:
    """Store an uploaded version folder under a prefix of its own; call it outside any transaction.

    Every upload gets a new prefix, so a version deleted and logged again under the same name
    never shares a key (or a worker's cached copy) with the old one, and two concurrent uploads
    never write into each other's folder.
    """
    prefix = f"{model_key(database, schema, model_name)}/{uuid.uuid4().hex}"
    try:
        files = _extract(storage, prefix, upload)
        spec = yaml.safe_load(files["model/model.yaml"])
        manifest = yaml.safe_load(files["MANIFEST.yml"])
        if not isinstance(spec, dict) or not isinstance(manifest, dict) or "signatures" not in spec:
            raise InvalidArgumentError("The model archive's model.yaml or MANIFEST.yml is malformed.")
    except BaseException:
        storage.delete_tree(prefix)
        raise
    spec["manifest"] = manifest
    return StoredArtifact(key=prefix, spec=spec)


def add_version(
    session: Session,
    *,
    database: str,
    schema: str,
    model_name: str,
    version_name: str | None,
    owner: str,
    artifact: StoredArtifact,
) -> ModelVersionRow:
    """Register a stored version (creating the model on first use); the first version becomes the default."""
    sch: SchemaRow = get_schema(session, database, schema)
    model = session.scalars(
        select(ModelRow).where(ModelRow.schema_id == sch.id, ModelRow.name == model_name)
    ).one_or_none()
    existing = {v.name for v in model.versions} if model else set()
    if version_name is None:
        version_name = generate_version_name(existing)
    elif version_name in existing:
        raise _version_exists(model_name, version_name)
    if model is None:
        model = ModelRow(schema_id=sch.id, name=model_name, owner=owner, default_version=version_name)
        session.add(model)
        session.flush()
    version = ModelVersionRow(
        model_id=model.id,
        name=version_name,
        owner=owner,
        artifact_key=artifact.key,
        model_type=str(artifact.spec.get("model_type", "custom")),
        spec=artifact.spec,
        metrics={},
    )
    model.versions.append(version)
    if model.default_version is None:
        model.default_version = version_name
    session.flush()
    return version


def delete_version(session: Session, model: ModelRow, version_name: str) -> str:
    """Delete a version's row; returns its artifact prefix for the caller to purge after commit."""
    version = _by_name(model, version_name)
    if version is None:
        raise NotFoundError(
            f"Unable to find version or alias with name {qualified(version_name)} in model {qualified(model.name)}"
        )
    if model.default_version == version_name and len(model.versions) > 1:
        raise InvalidArgumentError(
            f"Version {qualified(version_name)} is the default version of model {qualified(model.name)} and cannot "
            "be dropped. Set another default version first, or drop the model."
        )
    prefix = version.artifact_key
    model.versions.remove(version)
    for alias in [a for a in model.aliases if a.version_name == version_name]:
        model.aliases.remove(alias)
    if model.default_version == version_name:
        model.default_version = None
    session.flush()
    return prefix


def delete_model(session: Session, model: ModelRow) -> str:
    key = model_key(model.schema.database.name, model.schema.name, model.name)
    session.delete(model)
    session.flush()
    return key


def set_default(session: Session, model: ModelRow, version_name: str) -> None:
    if _by_name(model, version_name) is None:
        raise InvalidArgumentError(
            f"You cannot set version {qualified(version_name)} as default version as it does not exist."
        )
    model.default_version = version_name
    session.flush()


def set_alias(session: Session, model: ModelRow, version_name: str, alias: str) -> None:
    if alias in SYSTEM_ALIASES:
        raise InvalidArgumentError(f"{alias} is a system alias and cannot be set on a version.")
    if _by_name(model, alias) is not None:
        raise InvalidArgumentError(f"Alias {qualified(alias)} conflicts with a version name of the model.")
    if _by_name(model, version_name) is None:
        raise NotFoundError(
            f"Unable to find version {qualified(version_name)} in model {qualified(model.name)}"
        )
    current = next((a for a in model.aliases if a.alias == alias), None)
    if current is not None:
        current.version_name = version_name  # aliases move, as in Snowflake
    else:
        model.aliases.append(ModelAliasRow(alias=alias, version_name=version_name))
    session.flush()


def unset_alias(session: Session, model: ModelRow, version_or_alias: str) -> None:
    """Remove an alias, named directly or through the version it points to."""
    matches = [a for a in model.aliases if a.alias == version_or_alias or a.version_name == version_or_alias]
    if not matches:
        raise NotFoundError(
            f"No alias {qualified(version_or_alias)} is set in model {qualified(model.name)}."
        )
    for alias in matches:
        model.aliases.remove(alias)
    session.flush()


def set_tag(session: Session, model: ModelRow, tag: str, value: str) -> None:
    current = next((t for t in model.tags if t.name == tag), None)
    if current is not None:
        current.value = value
    else:
        model.tags.append(ModelTagRow(name=tag, value=value))
    session.flush()


def unset_tag(session: Session, model: ModelRow, tag: str) -> None:
    current = next((t for t in model.tags if t.name == tag), None)
    if current is None:
        raise NotFoundError(f"Tag {tag} is not set on model {qualified(model.name)}.")
    model.tags.remove(current)
    session.flush()


# -- views ----------------------------------------------------------------------------------------


def functions_of(spec: dict[str, Any]) -> list[FunctionPublic]:
    """One entry per target method, named as SQL resolves it (``predict`` -> ``PREDICT``)."""
    method_options: dict[str, Any] = spec.get("method_options") or {}
    properties: dict[str, Any] = spec.get("function_properties") or {}
    default_type = ((spec.get("options") or {}).get("function_type")) or "FUNCTION"
    out: list[FunctionPublic] = []
    for method, signature in (spec.get("signatures") or {}).items():
        opts = method_options.get(method) or {}
        sql_name = method if opts.get("case_sensitive") else _sql_name(method)
        ftype = opts.get("function_type") or default_type
        partitioned = bool((properties.get(method) or {}).get("PARTITIONED", False))
        out.append(
            FunctionPublic(
                name=sql_name,
                target_method=method,
                target_method_function_type=ftype,
                signature=signature,
                is_partitioned=partitioned if ftype == "TABLE_FUNCTION" else False,
            )
        )
    return out


def _sql_name(method: str) -> str:
    try:
        return resolve_identifier(method)
    except InvalidArgumentError:
        return method


def version_public(version: ModelVersionRow) -> ModelVersionPublic:
    model = version.model
    aliases = [a.alias for a in model.aliases if a.version_name == version.name]
    ordered = sorted(model.versions, key=lambda v: (v.created_on, v.id))
    system = [
        name
        for name, hit in (
            ("DEFAULT", model.default_version == version.name),
            ("FIRST", ordered and ordered[0].name == version.name),
            ("LAST", ordered and ordered[-1].name == version.name),
        )
        if hit
    ]
    spec = {k: v for k, v in version.spec.items() if k != "manifest"}
    return ModelVersionPublic(
        database_name=model.schema.database.name,
        schema_name=model.schema.name,
        model_name=model.name,
        name=version.name,
        comment=version.comment,
        owner=version.owner,
        created_on=version.created_on,
        model_type=version.model_type,
        is_default_version=model.default_version == version.name,
        aliases=system + sorted(aliases),
        functions=functions_of(version.spec),
        metrics=dict(version.metrics or {}),
        spec=spec,
    )


def model_public(model: ModelRow) -> ModelPublic:
    first = model.versions[0] if model.versions else None
    return ModelPublic(
        database_name=model.schema.database.name,
        schema_name=model.schema.name,
        name=model.name,
        comment=model.comment,
        owner=model.owner,
        created_on=model.created_on,
        model_type=first.model_type if first else None,
        default_version_name=model.default_version,
        versions=[v.name for v in model.versions],
        aliases={a.alias: a.version_name for a in model.aliases},
        tags={t.name: t.value for t in model.tags},
    )


def iter_artifact(storage: Storage, version: ModelVersionRow, *, subtree: str = "") -> Iterator[bytes]:
    """The version folder (or one subtree of it) as an uncompressed tar stream."""
    prefix = version.artifact_key + "/" + (subtree.strip("/") + "/" if subtree else "")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|") as tar:
        for entry in storage.list(prefix):
            rel = entry.key[len(version.artifact_key) + 1 :]
            info = tarfile.TarInfo(rel)
            info.size = entry.size
            info.mtime = int(entry.last_modified.timestamp())
            with storage.open_input_file(entry.key) as f:
                tar.addfile(info, _Reader(f))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


class _Reader:
    """Adapts a pyarrow file to the .read(n) tarfile expects."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return bytes(self._f.read() if n < 0 else self._f.read(n))
