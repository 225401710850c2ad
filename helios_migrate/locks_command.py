"""``helios-migrate locks``: what each statement locks, what that blocks, and what to do instead."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from .catalog import LiveCatalog
from .config import ConfigError, load_config
from .db import DatabaseUnreachable, connect_read_only
from .effects import Certainty, Effect, TransactionUse
from .knowledge import SchemaLookup, effect_of
from .sql_parse import SqlSyntaxError, parse_statements
from .versions import PgVersion, VersionError, target_version


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


class UsageError(Exception):
    """Bad input or environment: reported in one line, exit code 2."""


@dataclass(frozen=True)
class StatementReport:
    source: str
    line: int
    column: int
    sql: str
    effects: tuple[Effect, ...]


def _is_file(path: Path) -> bool:
    """False for text that cannot be a path (a name too long for the file system, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_sql_argument(arg: str | None) -> tuple[str, str]:
    """Return ``(sql, source name)`` for a SQL string, a ``.sql`` path, or ``-``/nothing for stdin."""
    if arg is None or arg == "-":
        if sys.stdin.isatty():
            raise UsageError("no SQL given: pass a statement, a .sql file, or pipe SQL on standard input")
        return sys.stdin.read(), "<stdin>"
    candidate = Path(arg)
    if "\n" not in arg and len(arg) < 4096 and (arg.endswith(".sql") or _is_file(candidate)):
        try:
            return candidate.read_text(encoding="utf-8"), arg
        except FileNotFoundError:
            raise UsageError(f"{arg}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{arg}: cannot read: {exc}") from None
    return arg, "<sql>"


@contextmanager
def live_catalog(database_url: str) -> Iterator[SchemaLookup]:
    """Catalog lookups over a read-only connection; :class:`UsageError` when unreachable."""
    try:
        conn = connect_read_only(database_url)
    except DatabaseUnreachable as exc:
        raise UsageError(str(exc)) from None
    try:
        yield LiveCatalog(conn)
    finally:
        conn.close()


def resolve_version(pg_version: str | None, catalog: Any | None) -> tuple[PgVersion, str]:
    """The version to judge for: ``--pg-version``, ``HELIOS_PG_VERSION``, ``pg_version`` in the
    configuration, the database's own, or the default -- and where it came from."""
    try:
        configured = load_config().pg_version
    except ConfigError:
        configured = None
    try:
        target = target_version(
            explicit=pg_version,
            configured=configured,
            database=catalog.version if catalog is not None else None,
        )
    except VersionError as exc:
        raise UsageError(str(exc)) from None
    source = target.source
    if target.database is not None and target.database != target.version:
        source += f"; the database read is {target.database}"
    return target.version, source


def analyse(sql: str, source: str, version: PgVersion, catalog: SchemaLookup | None) -> list[StatementReport]:
    return [
        StatementReport(
            st.source, st.line, st.column, st.sql,
            tuple(effect_of(ch, version, catalog) for ch in st.changes),
        )
        for st in parse_statements(sql, source)
    ]


def effect_to_json(eff: Effect) -> dict[str, Any]:
    return {
        "change": eff.change.kind,
        "locks": [
            {
                "relation": str(lk.relation),
                "role": lk.role.value,
                "mode": lk.mode.sql_name,
                "blocks": {
                    "reads": lk.mode.blocks_reads,
                    "writes": lk.mode.blocks_writes,
                    "ddl": lk.mode.blocks_ddl,
                },
            }
            for lk in eff.locks
        ],
        "blocks_reads": eff.blocks_reads,
        "blocks_writes": eff.blocks_writes,
        "work": eff.work.value,
        "rewrites_table": eff.rewrites_table,
        "builds_index": eff.builds_index,
        "rebuilt_indexes": [str(i) for i in eff.rebuilt_indexes],
        "transaction": eff.transaction.value,
        "certainty": eff.certainty.value,
        "notes": list(eff.notes),
        "safer_alternative": eff.safer_alternative,
        "unsupported": eff.unsupported,
    }


def render_json(reports: list[StatementReport], version: PgVersion, version_source: str) -> str:
    doc = {
        "pg_version": str(version),
        "pg_version_source": version_source,
        "statements": [
            {
                "source": r.source,
                "line": r.line,
                "column": r.column,
                "sql": r.sql,
                "effects": [effect_to_json(e) for e in r.effects],
            }
            for r in reports
        ],
    }
    return json.dumps(doc, indent=2)


_WORK_PHRASE = {
    "metadata": "metadata only (catalog change, fast whatever the table size)",
    "scan": "full scan (reads every row while the lock is held)",
    "rewrite": "table rewrite (a new copy of the table and all its indexes)",
    "index build": "index build (reads the whole table)",
    "row writes": "row writes (locks, WAL and bloat per row touched)",
    "unknown": "unknown",
}


def render_text(console: Console, reports: list[StatementReport], version: PgVersion, version_source: str) -> None:
    console.print(f"PostgreSQL {version} ({version_source})", style="dim")
    for r in reports:
        console.print()
        first = r.sql.splitlines()[0] if r.sql else ""
        more = " ..." if "\n" in r.sql or len(first) > 110 else ""
        console.print(f"[bold]{escape(r.source)}:{r.line}:{r.column}[/bold]  {escape(first[:110])}{more}")
        if not r.effects:
            console.print("  nothing to analyse")
        for eff in r.effects:
            _render_effect(console, eff)


def _render_effect(console: Console, eff: Effect) -> None:
    if eff.unsupported:
        console.print(f"  [red]not supported[/red]: {escape(eff.unsupported)}")
    if not eff.locks:
        console.print("  no table lock")
    for lk in eff.locks:
        blocked = lk.mode.blocked_summary()
        style = "red" if lk.mode.blocks_reads else "yellow" if lk.mode.blocks_writes else "green"
        console.print(
            f"  [{style}]{lk.mode.sql_name}[/{style}] on {escape(str(lk.relation))} ({lk.role.value})"
            f" - blocks {blocked}"
        )
    if eff.rebuilds_indexes_only:
        mode = eff.strongest.sql_name if eff.strongest is not None else "its lock"
        console.print(f"  work: index rebuild under {mode} (the table is kept; its indexes are rebuilt)")
    else:
        rewrite = ", rewrites the table" if eff.rewrites_table else ""
        console.print(f"  work: {_WORK_PHRASE[eff.work.value]}{rewrite}")
    if eff.rebuilt_indexes:
        names = ", ".join(escape(str(i)) for i in eff.rebuilt_indexes)
        console.print(f"  indexes rebuilt: {names}")
    if eff.transaction is TransactionUse.OUTSIDE_ONLY:
        console.print("  must run outside a transaction block (autocommit)")
    elif eff.transaction is TransactionUse.COMMIT_BEFORE_USE:
        console.print("  the result is usable only after the transaction commits")
    if eff.certainty is not Certainty.KNOWN:
        console.print(f"  certainty: {eff.certainty.value}", style="dim")
    for note in eff.notes:
        console.print(f"  note: {escape(note)}", style="dim")
    if eff.safer_alternative:
        console.print(f"  [green]safer[/green]: {escape(eff.safer_alternative)}")


def run_locks(
    sql_arg: str | None,
    *,
    pg_version: str | None,
    database_url: str | None,
    output_format: OutputFormat,
    console: Console | None = None,
) -> int:
    """Run the command; returns the exit code (0 ok, 2 usage, parse or connection errors)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = console or Console(highlight=False, soft_wrap=True)
    try:
        sql, source = read_sql_argument(sql_arg)
        if database_url:
            with live_catalog(database_url) as catalog:
                version, version_source = resolve_version(pg_version, catalog)
                reports = analyse(sql, source, version, catalog)
        else:
            version, version_source = resolve_version(pg_version, None)
            reports = analyse(sql, source, version, None)
    except SqlSyntaxError as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}")
        return 2
    except UsageError as exc:
        err.print(f"[red]error[/red]: {escape(str(exc))}")
        return 2
    if output_format is OutputFormat.JSON:
        print(render_json(reports, version, version_source))
    else:
        render_text(out, reports, version, version_source)
    return 0


def locks_command(
    sql: Annotated[
        str | None,
        typer.Argument(
            help="SQL text, a path to a .sql file, or '-' (the default) to read standard input."
        ),
    ] = None,
    pg_version: Annotated[
        str | None,
        typer.Option("--pg-version", help="PostgreSQL version to assume offline (13-18, e.g. 15 or 14.2)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="HELIOS_DATABASE_URL",
            help="Read the version and catalog facts (column types, casts, constraints) from this database. Read-only.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.TEXT,
) -> None:
    """Show, per statement, the locks taken, what they block, the work done and a safer alternative."""
    raise typer.Exit(run_locks(sql, pg_version=pg_version, database_url=database_url, output_format=output_format))
