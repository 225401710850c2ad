"""The ``helios-migrate docs`` command: write the documentation folder, or (``--check``) say
whether the folder on disk is what would be written now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from .. import pgserver
from ..db import DatabaseUnreachable, connect_read_only, first_line
from ..diff.catalog import SchemaObjects
from ..diff.command import settings_and_sides
from ..diff.sides import DiffUsageError, SideKind, SideOptions, read_side, scratch, side_kind
from .extras import Extras, read_extras
from .graphviz import DOT_MISSING, DotFailed, dot_path, draw_svg
from .history import History, HistoryError, read_history
from .pages import DOT, SVG, TABLES_DIR, render_folder
from .schema import Schema, build_schema

SVG_OFF = "schema.svg not drawn (--no-svg)"

EXIT_STALE = 1
EXIT_USAGE = 2


class DocsUsageError(Exception):
    """The docs cannot be made: a source that cannot be built or reached (exit code 2)."""


@dataclass(frozen=True)
class Generated:
    files: dict[str, str]
    """Path relative to the folder -> text (``schema.svg`` included when ``dot`` drew it)."""
    svg_note: str | None
    """Why ``schema.svg`` was not drawn (``None`` when it was)."""


def _extras(url: str, objects: SchemaObjects, *, sizes: bool, option: str) -> Extras:
    try:
        conn = connect_read_only(url, option=option)
    except DatabaseUnreachable as exc:
        raise DocsUsageError(str(exc).replace(url, pgserver.redact_url(url))) from None
    try:
        tables = sorted(o.name for o in objects.objects.values() if o.kind == "table") if sizes else None
        return read_extras(conn, sizes_of=tables)
    except psycopg.Error as exc:
        raise DocsUsageError(f"reading the catalog of {objects.label} failed: {first_line(exc)}") from None
    finally:
        conn.close()


def _source_words(spec: str, objects: SchemaObjects) -> str:
    kind = side_kind(spec)
    if kind is SideKind.DATABASE:
        return f"the database `{pgserver.redact_url(spec)}`"
    if kind is SideKind.MODELS:
        reference = re.sub(r"^models \((.*)\)$", r"\1", objects.label.split(", built on ")[0])
        return f"the models (`{reference}`)"
    return f"the revisions at `{spec}`"


def read_schema(spec: str, options: SideOptions, *, sizes: bool = True) -> tuple[Schema, str]:
    """The schema ``spec`` describes, read as ``diff`` reads a side, and the words for it."""
    try:
        with scratch(options) as where:
            objects = read_side(spec, options, where)
            if side_kind(spec) is SideKind.DATABASE:
                extras = _extras(spec, objects, sizes=sizes, option="SOURCE")
            else:
                built = pgserver.database_url(where.url(), where.databases[-1])
                extras = _extras(built, objects, sizes=False, option="--scratch-url")
    except DiffUsageError as exc:
        raise DocsUsageError(str(exc)) from None
    return build_schema(objects, extras), _source_words(spec, objects)


def _history(spec: str, options: SideOptions) -> History | None:
    ini = options.alembic_ini or Path.cwd() / "alembic.ini"
    if not ini.is_file():
        return None
    upto = spec if side_kind(spec) is SideKind.REVISION else "heads"
    try:
        return read_history(ini, upto=upto)
    except HistoryError as exc:
        raise DocsUsageError(str(exc)) from None


def generate(spec: str, options: SideOptions, *, sizes: bool = True, svg: bool = True) -> Generated:
    """Every file of the folder for ``spec``; raises :class:`DocsUsageError`."""
    schema, words = read_schema(spec, options, sizes=sizes)
    history = _history(spec, options)
    files = render_folder(schema, history, words)
    if not svg:
        return Generated(files, SVG_OFF)
    dot = dot_path()
    if dot is None:
        return Generated(files, DOT_MISSING)
    try:
        files[SVG] = draw_svg(files[DOT], dot)
    except DotFailed as exc:
        return Generated(files, f"schema.svg not drawn: {exc}")
    return Generated(dict(sorted(files.items())), None)


def _managed(out: Path) -> set[str]:
    """Files in ``out`` that docs writes: top-level Markdown, ``schema.dot``/``.svg``, ``tables/``."""
    found: set[str] = set()
    if not out.is_dir():
        return found
    for path in out.iterdir():
        if path.is_file() and path.suffix in (".md", ".dot", ".svg"):
            found.add(path.name)
    tables = out / TABLES_DIR
    if tables.is_dir():
        found |= {f"{TABLES_DIR}/{p.relative_to(tables).as_posix()}" for p in tables.rglob("*") if p.is_file()}
    return found


@dataclass(frozen=True)
class Staleness:
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def compare_folder(out: Path, generated: Generated) -> Staleness:
    on_disk = _managed(out)
    if generated.svg_note is not None:
        on_disk.discard(SVG)  # cannot be drawn here: neither stale nor extra
    missing, stale = [], []
    for name, text in generated.files.items():
        path = out / name
        if not path.is_file():
            missing.append(name)
        elif path.read_text(encoding="utf-8") != text:
            stale.append(name)
    extra = sorted(on_disk - set(generated.files))
    return Staleness(tuple(missing), tuple(stale), tuple(extra))


def write_folder(out: Path, generated: Generated) -> list[str]:
    """Write the folder (files whose text is unchanged are left alone) and remove table pages of
    tables that no longer exist; returns the paths written or removed."""
    done = []
    for name, text in generated.files.items():
        path = out / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        done.append(name)
    for name in sorted(_managed(out) - set(generated.files)):
        if name.startswith(f"{TABLES_DIR}/") and name.endswith(".md"):
            (out / name).unlink()
            done.append(f"{name} (removed)")
    return done


def docs_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="The documentation folder.")],
    source: Annotated[
        str, typer.Argument(help="models (default), head, a revision id, or a database URL (read-only).")
    ] = "models",
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 listing the files that are stale, missing "
                           "or extra when the folder differs from what would be written now.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="alembic.ini of the project (default: ./alembic.ini)."),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option("--models", help="module:attribute of the MetaData for the source 'models' "
                     "(default: target_metadata of the project's env.py, or models in \\[tool.helios-migrate.review])."),
    ] = None,
    scratch_url: Annotated[
        str | None,
        typer.Option("--scratch-url", envvar="HELIOS_DIFF_SCRATCH_URL",
                     help="A server where docs may create (and drops) a throwaway database to build the "
                     "models or revisions; default: a temporary embedded PostgreSQL."),
    ] = None,
    pg: Annotated[
        str | None,
        typer.Option("--pg", help="Major version of the temporary server (embedded 18; 15 from Debian's binaries)."),
    ] = None,
    sizes: Annotated[
        bool, typer.Option("--sizes/--no-sizes", help="With a database URL: each table's size and row "
                           "estimate (they change as the data does, so --check on a URL flags them).")
    ] = True,
    svg: Annotated[
        bool, typer.Option("--svg/--no-svg", help="Draw schema.svg with Graphviz's dot when it is on PATH "
                           "(--no-svg: neither drawn nor compared by --check, e.g. where CI has another "
                           "Graphviz version).")
    ] = True,
) -> None:
    """Write a documentation folder for the schema: README.md with the tables and an ER diagram
    (Mermaid; SVG through Graphviz when `dot` is installed), a page per table with its history
    from the Alembic revisions, and CHANGELOG-schema.md."""
    _, options = settings_and_sides(config, models, scratch_url, pg)
    if out.exists() and not out.is_dir():
        typer.echo(f"error: --out {out}: not a directory", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        generated = generate(source, options, sizes=sizes, svg=svg)
    except DocsUsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if generated.svg_note is not None and generated.svg_note != SVG_OFF:
        typer.echo(f"note: {generated.svg_note}", err=True)
    if check:
        _report_check(out, generated)
    written = write_folder(out, generated)
    tables = sum(1 for name in generated.files if name.startswith(f"{TABLES_DIR}/"))
    typer.echo(f"{out}: {len(generated.files)} file(s), {tables} table page(s); "
               f"{len(written)} written or removed, the rest unchanged.")
    for name in written:
        typer.echo(f"  {name}")


def _report_check(out: Path, generated: Generated) -> Any:
    state = compare_folder(out, generated)
    if state.current:
        typer.echo(f"{out}: up to date ({len(generated.files)} file(s)).")
        raise typer.Exit(0)
    typer.echo(f"{out}: not up to date:")
    for label, names in (("stale", state.stale), ("missing", state.missing), ("extra", state.extra)):
        for name in names:
            typer.echo(f"  {label}: {name}")
    typer.echo("Run `helios-migrate docs` with the same SOURCE and --out to write it again.")
    raise typer.Exit(EXIT_STALE)
