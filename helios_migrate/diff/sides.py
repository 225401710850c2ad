"""The two sides of a diff: the models, the revisions at a point, or a live database.

The models and the revisions are built in a throwaway database (``metadata.create_all()``, or
``alembic upgrade REV``) on a scratch server -- an embedded PostgreSQL started for the run, or the
server ``--scratch-url`` names -- and read back from the catalog exactly as a live database is, so
every side is described by PostgreSQL itself and nothing is compared across two printers.
A live database is only read (:func:`helios_migrate.db.connect_read_only`).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from .. import pgserver
from ..db import DatabaseUnreachable, connect_read_only, first_line
from ..review.env_models import (
    EnvModelsError,
    ModelsReferenceError,
    find_env_py,
    load_metadata,
    models_of_env,
)
from .catalog import SchemaObjects, read_objects


class DiffUsageError(Exception):
    """The diff cannot run: a side that cannot be built or reached (exit code 2)."""


class SideKind(str, Enum):
    MODELS = "models"
    REVISION = "revision"
    DATABASE = "database"


def side_kind(spec: str) -> SideKind:
    """``models``; a database URL (``postgresql://...``, ``postgres://...``, a SQLAlchemy
    ``postgresql+driver://`` URL or a keyword conninfo string); anything else is a revision."""
    if spec == "models":
        return SideKind.MODELS
    if "://" in spec or "=" in spec:
        return SideKind.DATABASE
    return SideKind.REVISION


@dataclass
class SideOptions:
    alembic_ini: Path | None = None
    models: str | None = None
    """``module:attribute`` of the MetaData (several joined by ``,``); default: env.py's
    ``target_metadata``, or ``models`` in ``[tool.helios-migrate.review]``."""
    config_source: str | None = None
    scratch_url: str | None = None
    pg: str | None = None
    version_table: str = "alembic_version"


@dataclass
class Scratch:
    """The scratch server, started on first use."""

    options: SideOptions
    workdir: Path | None = None
    server: pgserver.RunningServer | None = None
    databases: list[str] = field(default_factory=list)

    def url(self) -> str:
        if self.options.scratch_url:
            return self.options.scratch_url
        if self.server is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="helios-diff-"))
            major = self.options.pg
            try:
                if major is None or str(major) == str(pgserver.embedded_major() or 18):
                    self.server = pgserver.start_embedded(self.workdir / "pg")
                else:
                    bindir = f"/usr/lib/postgresql/{major}/bin"
                    if pgserver.binaries_major(bindir) is None:
                        raise DiffUsageError(
                            f"--pg {major}: no PostgreSQL {major} here ({bindir} not found); "
                            "give --scratch-url URL of a server of that version where diff may create databases"
                        )
                    self.server = pgserver.start_debian(self.workdir / "pg", bindir=bindir)
            except pgserver.ServerStartError as exc:
                raise DiffUsageError(
                    f"cannot start a scratch PostgreSQL: {exc} (or give --scratch-url URL)"
                ) from None
        return self.server.url

    def new_database(self) -> str:
        name = f"helios_diff_{uuid.uuid4().hex[:10]}"
        try:
            url = pgserver.create_database(self.url(), name, "template0")
        except psycopg.Error as exc:
            raise DiffUsageError(
                f"cannot create a scratch database on {pgserver.redact_url(self.url())}: {first_line(exc)}"
            ) from None
        self.databases.append(name)
        return url

    def close(self) -> None:
        if self.server is None and self.options.scratch_url:
            for name in self.databases:
                with contextlib.suppress(psycopg.Error):
                    pgserver.drop_database(self.options.scratch_url, name)
        if self.server is not None:
            self.server.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def scratch(options: SideOptions) -> Iterator[Scratch]:
    holder = Scratch(options)
    try:
        yield holder
    finally:
        holder.close()


def read_side(spec: str, options: SideOptions, where: Scratch, *, role: str = "SOURCE") -> SchemaObjects:
    """The objects ``spec`` (the ``role`` argument, SOURCE or TARGET) describes."""
    kind = side_kind(spec)
    if kind is SideKind.DATABASE:
        return _read_url(spec, pgserver.redact_url(spec), options, option=role)
    if kind is SideKind.MODELS:
        reference = _models_reference(options)
        metadatas = [_metadata(part.strip(), options) for part in reference.split(",")]
        url = where.new_database()
        _create_models(reference, metadatas, url)
        label = f"models ({reference})"
    else:
        ini = _alembic_ini(spec, options)
        url = where.new_database()
        _upgrade(spec, ini, url)
        label = f"revisions at {spec}"
    objects = _read_url(url, label, options, option="--scratch-url")
    if objects.server_version_num:
        built = f"{label}, built on PostgreSQL {objects.server_version_num // 10000}"
        objects = replace(objects, label=built)
    return replace(objects, not_described=NOT_DESCRIBED[kind])


NOT_DESCRIBED: dict[SideKind, tuple[tuple[str, str], ...]] = {
    SideKind.MODELS: (
        ("grant", "the models declare no privileges"),
        ("owner", "the models declare no owners"),
    ),
    SideKind.REVISION: (
        ("owner", "a side built from the revisions is owned by the scratch server's user, not by the "
                  "roles the revisions run as"),
    ),
    SideKind.DATABASE: (),
}
"""The object kinds a side of each kind cannot describe, and why (they are not compared)."""


def scratch_major_for(objects: SchemaObjects) -> str | None:
    """The major version a scratch server should have to build a side compared with ``objects``
    (a live database), when that version is here: the embedded one, or Debian's binaries."""
    if not objects.server_version_num:
        return None
    major = objects.server_version_num // 10000
    if major == pgserver.embedded_major():
        return str(major)
    if pgserver.binaries_major(f"/usr/lib/postgresql/{major}/bin") == major:
        return str(major)
    return None


def _read_url(url: str, label: str, options: SideOptions, *, option: str) -> SchemaObjects:
    try:
        conn = connect_read_only(url, option=option)
    except DatabaseUnreachable as exc:
        raise DiffUsageError(str(exc).replace(url, pgserver.redact_url(url))) from None
    try:
        return read_objects(conn, label=label, version_table=options.version_table)
    except psycopg.Error as exc:
        raise DiffUsageError(f"reading the catalog of {label} failed: {first_line(exc)}") from None
    finally:
        conn.close()


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# --- the models ---------------------------------------------------------------------------------


def _models_reference(options: SideOptions) -> str:
    if options.models:
        return options.models
    ini = options.alembic_ini or Path.cwd() / "alembic.ini"
    if not ini.is_file():
        raise DiffUsageError(
            f"models: no Alembic project ({ini} does not exist) to find target_metadata in; "
            "give --models module:attribute (e.g. app.models:Base.metadata) or -c PATH/alembic.ini"
        )
    try:
        return ",".join(models_of_env(find_env_py(ini.resolve())).references)
    except EnvModelsError as exc:
        raise DiffUsageError(str(exc)) from None


def _metadata(reference: str, options: SideOptions) -> Any:
    places = [Path.cwd(), *([Path(options.config_source).parent] if options.config_source else [])]
    if options.alembic_ini:
        places.append(options.alembic_ini.resolve().parent)
    try:
        return load_metadata(reference, places)
    except ModelsReferenceError as exc:
        raise DiffUsageError(str(exc)) from None


def _create_models(reference: str, metadatas: list[Any], url: str) -> None:
    engine = sa.create_engine(_sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            for metadata in metadatas:
                for schema in sorted({t.schema for t in metadata.tables.values() if t.schema}):
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema.replace(chr(34), chr(34) * 2)}"'))
                metadata.create_all(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise DiffUsageError(
            f"models ({reference}): create_all failed on the scratch database: {first_line(exc)}"
        ) from None
    finally:
        engine.dispose()


# --- the revisions ------------------------------------------------------------------------------


def _alembic_ini(revision: str, options: SideOptions) -> Path:
    ini = options.alembic_ini or Path.cwd() / "alembic.ini"
    if not ini.is_file():
        raise DiffUsageError(
            f"{revision}: no Alembic project ({ini} does not exist); run from the directory holding "
            "alembic.ini, or pass -c PATH"
        )
    return ini


class _OtherDatabase(Exception):
    """env.py connected to a database other than the scratch one."""


def _upgrade(revision: str, ini: Path, url: str) -> None:
    """``alembic upgrade revision`` on the scratch database ``url``.  An env.py that takes its URL
    from somewhere else (an environment variable) would upgrade that database instead: every
    connection the run opens is checked before it is used, and one to another database stops it."""
    cfg = Config(str(ini), stdout=io.StringIO())
    cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(url).replace("%", "%%"))
    scratch_name = sa.engine.make_url(_sqlalchemy_url(url)).database

    def only_scratch(connection: Any) -> None:
        used = connection.engine.url
        if used.database != scratch_name:
            raise _OtherDatabase(used.render_as_string(hide_password=True))

    sa.event.listen(sa.engine.Engine, "engine_connect", only_scratch)
    try:
        command.upgrade(cfg, revision)
    except _OtherDatabase as exc:
        raise DiffUsageError(
            f"{revision}: the project's env.py connects to {exc}, not to the scratch database diff gave it "
            "(sqlalchemy.url): nothing was run. Make env.py use config.get_main_option('sqlalchemy.url') when "
            "it is set, or unset the variable it reads the URL from"
        ) from None
    except CommandError as exc:
        raise DiffUsageError(f"{revision}: {exc}") from None
    except Exception as exc:  # a revision that fails on an empty database: say which, no traceback
        raise DiffUsageError(
            f"upgrading a scratch database to {revision} failed: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    finally:
        sa.event.remove(sa.engine.Engine, "engine_connect", only_scratch)
