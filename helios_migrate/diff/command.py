"""The ``helios-migrate diff`` command."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from ..config import Config, ConfigError, load_config
from ..db import DatabaseUnreachable, connect_read_only, first_line
from ..facts import DatabaseFacts, collect_facts
from ..pgserver import redact_url
from ..planner import PlanPolicy
from ..review.revision import RevisionError
from ..versions import PgVersion, default_version
from .catalog import SchemaObjects
from .compare import DiffResult, compare
from .converge import converge, render_plan, tables_of, write_converging_revision
from .report import render
from .sides import (
    DiffUsageError,
    SideKind,
    SideOptions,
    read_side,
    scratch,
    scratch_major_for,
    side_kind,
)

EXIT_DIFFERENT = 1
EXIT_USAGE = 2


class DiffFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def run_diff(source: str, target: str, options: SideOptions, ignore: tuple[str, ...] = ()) -> DiffResult:
    """Build or read both sides and compare them; raises :class:`DiffUsageError`."""
    specs = {"SOURCE": source, "TARGET": target}
    # live databases first: a side built on the scratch server is built on their major version
    # when no version was asked for (two majors may print an expression differently)
    order = sorted(specs, key=lambda role: side_kind(specs[role]) is not SideKind.DATABASE)
    read: dict[str, SchemaObjects] = {}
    with scratch(options) as where:
        for role in order:
            read[role] = read_side(specs[role], options, where, role=role)
            if side_kind(specs[role]) is SideKind.DATABASE and options.pg is None and not options.scratch_url:
                options.pg = scratch_major_for(read[role])
    return compare(read["SOURCE"], read["TARGET"], ignore)


def target_facts(target: str, result: DiffResult, version: PgVersion) -> DatabaseFacts | None:
    """TARGET's table facts (row estimates, sizes, indexes) for the tables the plan touches, when
    TARGET is a live database (read-only); None otherwise (the planner then assumes rows)."""
    if side_kind(target) is not SideKind.DATABASE:
        return None
    tables = tables_of(result, version)
    if not tables:
        return None
    try:
        conn = connect_read_only(target, option="TARGET")
    except DatabaseUnreachable as exc:
        raise DiffUsageError(str(exc).replace(target, redact_url(target))) from None
    try:
        return collect_facts(conn, tables, write_sample_s=None)
    except psycopg.Error as exc:
        raise DiffUsageError(f"reading TARGET's table facts failed: {first_line(exc)}") from None
    finally:
        conn.close()


def _plan_text(result: DiffResult, settings: Config, target: str | None = None) -> str:
    num = result.target_version_num
    version = PgVersion.parse(str(num)) if num else settings.pg_version or default_version()
    facts = target_facts(target, result, version) if target is not None else None
    return render_plan(converge(result, version, PlanPolicy.from_config(settings), facts), facts is not None)


def _with_plan(report: str, plan_sql: str, output_format: DiffFormat) -> str:
    if output_format is DiffFormat.JSON:
        data = json.loads(report)
        data["plan"] = plan_sql
        return json.dumps(data, indent=2) + "\n"
    if output_format is DiffFormat.MARKDOWN:
        return f"{report}\n### Plan turning TARGET into SOURCE\n\n```sql\n{plan_sql}```\n"
    return f"{report}\n{plan_sql}"


def _write(result: DiffResult, target_url: str, config: Path | None, message: str) -> None:
    """Write the converging revision; what was written goes to stderr (stdout is the report)."""
    ini = config or Path("alembic.ini")
    if not ini.is_file():
        typer.echo(f"error: --write: no Alembic project: {ini} not found (give -c PATH)", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        written, others = write_converging_revision(
            result, target_url=target_url, alembic_ini=ini.resolve(), message=message
        )
    except RevisionError as exc:
        typer.echo(f"error: --write: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    for fix, why in written.skipped:
        typer.echo(f"helios-migrate diff: not written: {fix.label}: {why}", err=True)
    for d, why in others:
        typer.echo(f"helios-migrate diff: not written: {d.kind} {d.name}: {why}", err=True)
    count = len(result.differences) - len(others) - len(written.skipped)
    typer.echo(
        f"Wrote {written.path} (revision {written.revision}, down_revision {written.down_revision}): "
        f"{count} difference(s).", err=True,
    )


def settings_and_sides(
    config: Path | None, models: str | None, scratch_url: str | None, pg: str | None
) -> tuple[Config, SideOptions]:
    """The project's settings and how to build each side, from the options ``diff`` and ``docs``
    share; a bad configuration or a missing ``-c`` file ends the command with exit 2."""
    try:
        settings = load_config(start=config.resolve().parent if config else None)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if config is not None and not config.is_file():
        typer.echo(f"error: -c {config}: no such file", err=True)
        raise typer.Exit(EXIT_USAGE)
    return settings, SideOptions(
        alembic_ini=config, models=models or settings.review.models, config_source=settings.source,
        scratch_url=scratch_url, pg=pg, version_table=settings.version_table,
    )


def diff_command(
    source: Annotated[str, typer.Argument(help="models, head, a revision id, or a database URL.")],
    target: Annotated[str, typer.Argument(help="models, head, a revision id, or a database URL.")],
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="alembic.ini of the project (default: ./alembic.ini)."),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option("--models", help="module:attribute of the MetaData for the side 'models' "
                     "(default: target_metadata of the project's env.py, or models in \\[tool.helios-migrate.review])."),
    ] = None,
    scratch_url: Annotated[
        str | None,
        typer.Option("--scratch-url", envvar="HELIOS_DIFF_SCRATCH_URL",
                     help="A server where diff may create (and drops) throwaway databases to build the "
                     "models and revisions; default: a temporary embedded PostgreSQL."),
    ] = None,
    pg: Annotated[
        str | None,
        typer.Option("--pg", help="Major version of the temporary server (embedded 18; 15 from Debian's binaries)."),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Leave out objects matching this glob, \\[kind:]name (repeatable; "
                     "added to ignore in \\[tool.helios-migrate.diff])."),
    ] = None,
    output_format: Annotated[DiffFormat, typer.Option("--format", help="Report format.")] = DiffFormat.TEXT,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the report to this file instead of stdout.")
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Also print the lock-safe plan that turns TARGET into SOURCE.")
    ] = False,
    write: Annotated[
        bool, typer.Option("--write", help="Write the revision that converges TARGET (a database URL) to "
                           "SOURCE into the Alembic project, planned by the helios plugin, with its downgrade.")
    ] = False,
    message: Annotated[
        str, typer.Option("-m", "--message", help="Message of the revision --write writes.")
    ] = "converge schema drift",
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 even when the sides differ (for reports).")
    ] = False,
) -> None:
    """Compare two schemas -- the models, the revisions at a point, a live database (read-only) --
    object by object: what TARGET lacks (missing), what it has in excess (extra), what differs.
    Exits 1 when they differ, so `diff head $DATABASE_URL` is a drift gate."""
    settings, options = settings_and_sides(config, models, scratch_url, pg)
    patterns = (*settings.diff.ignore, *(ignore or ()))
    if write and side_kind(target) is not SideKind.DATABASE:
        typer.echo("error: --write converges a live database: TARGET must be a database URL", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        result = run_diff(source, target, options, patterns)
    except DiffUsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if write:
        _write(result, target, config, message)
    text = render(result, output_format.value)
    if plan:
        try:
            text = _with_plan(text, _plan_text(result, settings, target), output_format)
        except DiffUsageError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    raise typer.Exit(EXIT_DIFFERENT if result.differ and not exit_zero else 0)
