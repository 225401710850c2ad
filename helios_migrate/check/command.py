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
    show_info: Annotated[
        bool,
        typer.Option(
            "--show-info",
            help="List info findings in text, Markdown and GitHub output too (they are counted, "
            "and JSON and SARIF always list them).",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q",
            help="List only findings at or above --fail-on (the summary still counts every finding).",
        ),
    ] = False,
    docs_url: Annotated[
        str | None,
        typer.Option(
            "--docs-url",
            envvar="HELIOS_DOCS_URL",
            help="Base address of the rule pages (default: docs/rules/ in the helios-migrate repository).",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            envvar="HELIOS_NO_CACHE",
            help="Do not read or write .helios-cache/ (findings cached by revision file content).",
        ),
    ] = False,
    write_sum: Annotated[
        bool,
        typer.Option(
            "--write-sum",
            help="Record every revision's hash in helios.sum beside the Alembic configuration; once "
            "committed, check reports a listed revision whose content changed (HM313).",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j",
            min=1,
            help="Processes that check a project's revisions (default: one per available CPU, "
            "within a container's CPU quota, at most 8; 1 with --database-url, and on systems "
            "other than Linux).",
            show_default=False,
        ),
    ] = None,
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
    environment errors, including a run that would check nothing (a path that holds no revision,
    a project whose version locations hold no revision file).  Text output lists errors and
    warnings; --show-info adds info findings, --quiet keeps only blocking ones.
    """
    from ..rules import RuleLoadError  # lazy: the CLI's lazy loading
    from .runner import CheckOptions, run_check  # lazy: the CLI's lazy loading

    options = CheckOptions(
        paths=tuple(paths or ()),
        revision_range=revision_range,
        since=since,
        downgrade=downgrade,
        pg_version=pg_version,
        database_url=database_url,
        fail_on=fail_on,
        show_info=show_info,
        quiet=quiet,
        docs_base_url=docs_url,
        cache=not no_cache,
        write_sum=write_sum,
        jobs=jobs,
    )
    try:
        report = run_check(options)
    except (CheckUsageError, RuleLoadError) as exc:
        typer.echo(f"helios-migrate check: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(render(report, output_format))
    sys.stdout.flush()
    raise typer.Exit(report.exit_code)
