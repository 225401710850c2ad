"""``helios-migrate indexes``: suggest indexes for the queries a database really runs."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer


class IndexesFormat(str, enum.Enum):
    TEXT = "text"
    SQL = "sql"
    JSON = "json"


class Judge(str, enum.Enum):
    HYPOPG = "hypopg"
    COPY = "copy"
    NONE = "none"


class IndexesUsageError(Exception):
    """A problem the user can fix; exit code 2."""


def indexes_command(
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url", envvar="HELIOS_DATABASE_URL",
            help="The database to advise (read-only: catalog, statistics and pg_stat_statements queries).",
        ),
    ],
    queries: Annotated[
        Path | None,
        typer.Option(
            "--queries",
            help="A SQL file of the queries to serve, instead of pg_stat_statements; a comment "
            "'-- calls=N mean_ms=M' before a query gives its weight.",
        ),
    ] = None,
    output_format: Annotated[
        IndexesFormat,
        typer.Option("--format", help="text; sql (the CREATE INDEX statements, one per line); json."),
    ] = IndexesFormat.TEXT,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many suggestions.")] = 10,
    write_revision: Annotated[
        bool,
        typer.Option(
            "--write-revision",
            help="Write the suggestions as one Alembic revision (CREATE INDEX CONCURRENTLY, planned by "
            "the helios plugin) in the project of --alembic-ini.",
        ),
    ] = False,
    alembic_ini: Annotated[
        Path, typer.Option("--alembic-ini", help="The Alembic project --write-revision writes into.")
    ] = Path("alembic.ini"),
    message: Annotated[str, typer.Option("--message", "-m", help="The revision's message.")] = "helios index advice",
    judge: Annotated[
        Judge | None,
        typer.Option(
            "--judge",
            help="How candidates are judged by the planner: hypopg (hypothetical indexes, the extension "
            "installed in the database); copy (real indexes on a throwaway copy of the schema and "
            "statistics, on an embedded PostgreSQL 18 or --scratch-url); none (ranked by query time, "
            "unverified). Default: hypopg when installed, else copy when possible, else none.",
        ),
    ] = None,
    scratch_url: Annotated[
        str | None,
        typer.Option(
            "--scratch-url", envvar="HELIOS_INDEXES_SCRATCH_URL",
            help="A PostgreSQL 18+ server on this machine for --judge copy, instead of an embedded one: "
            "a database is created there for the copy and dropped at the end.",
        ),
    ] = None,
) -> None:
    """Suggest indexes for the slow and frequent queries (pg_stat_statements, or --queries FILE).

    Each query is read from its parse tree: WHERE equality and range comparisons, JOIN keys and
    ORDER BY give the columns of a B-tree that would serve it; candidates an existing index serves
    are dropped, and the rest merged so one index serves every query it can.  Exit codes: 0
    (suggestions or none), 2 usage or connection errors.
    """
    from . import report as advice  # lazy: listing the commands loads neither psycopg nor pglast

    try:
        result = advice.run(database_url, queries, limit, judge=judge, scratch_url=scratch_url)
        if write_revision:
            advice.write(result, database_url, alembic_ini, message)
    except IndexesUsageError as exc:
        typer.echo(f"helios-migrate indexes: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(advice.RENDERERS[output_format](result))
    sys.stdout.flush()
