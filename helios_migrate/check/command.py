"""``helios-migrate check``: the CI safety gate for migration pull requests."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .formats import OutputFormat, render
from .problems import CheckUsageError


def check_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Alembic project directories, revision files, .sql files or folders of .sql "
            "files (default: the Alembic project in the current directory).",
            show_default=False,
        ),
    ] = None,
    revision_range: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="Only the revisions `alembic upgrade LOWER:UPPER` would apply, e.g. base:head "
            "or ae10:head (LOWER itself excluded).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only revisions and .sql files added or changed since this git ref "
            "(from its merge base with HEAD, uncommitted changes included), e.g. origin/main.",
        ),
    ] = None,
    downgrade: Annotated[
        bool, typer.Option("--downgrade", help="Also render and check each revision's downgrade().")
    ] = False,
    pg_version: Annotated[
        str | None,
        typer.Option("--pg-version", help="PostgreSQL version the migrations will run on (13-18, e.g. 15 or 14.2)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="HELIOS_DATABASE_URL",
            help="Read the server version, table sizes and row estimates from this database (read-only queries).",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.TEXT,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with code 1 when a finding is at or above this severity: error, warning "
            "or info (default: fail_on in pyproject.toml, else error).",
        ),
    ] = None,
) -> None:
    """Check migrations for statements that lock, rewrite or break a live PostgreSQL database.

    Exit codes: 0 no finding at or above --fail-on, 1 such findings, 2 usage, configuration or
    environment errors.
    """
    from ..rules import RuleLoadError
    from .runner import CheckOptions, run_check

    options = CheckOptions(
        paths=tuple(paths or ()),
        revision_range=revision_range,
        since=since,
        downgrade=downgrade,
        pg_version=pg_version,
        database_url=database_url,
        fail_on=fail_on,
    )
    try:
        report = run_check(options)
    except (CheckUsageError, RuleLoadError) as exc:
        typer.echo(f"helios-migrate check: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(render(report, output_format))
    sys.stdout.flush()
    raise typer.Exit(report.exit_code)
