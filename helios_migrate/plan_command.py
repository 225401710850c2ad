"""``helios-migrate plan``: the plan autogenerate would write, with its impact, before any file is
written.

Given an Alembic project, Alembic's own autogenerate runs against the live database (through the
project's ``env.py``, as ``alembic revision --autogenerate`` would) with a
``process_revision_directives`` hook that takes the operations and then empties the directives, so
no revision file is written.  The operations become changes, the changes a plan, and the plan is
estimated against facts read on the same connection.  ``--sql FILE`` estimates raw SQL statements
instead, one step per statement.

Read-only on the database: catalog and statistics queries, a timed ``SELECT count(*)`` for the
throughput calibration (``--no-calibrate`` skips it), nothing else.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape

from .alembic_ops import changes_from_op, render_sql
from .calibration import Throughput, calibrate, default_throughput
from .catalog import LiveCatalog
from .changes import Change
from .config import ConfigError, load_config
from .db import DatabaseUnreachable, connect_read_only, first_line
from .effects import TransactionUse
from .facts import DEFAULT_WRITE_SAMPLE_S, DatabaseFacts, collect_facts
from .impact import PlanImpact, estimate_plan, render_table, tables_of_plan, to_json, to_markdown
from .knowledge import SchemaLookup, effect_of
from .plan import Phase, Plan, Step, TransactionMode
from .planner import PlanPolicy, UnrenderableChange, plan_changes
from .sql_parse import SqlSyntaxError, parse_statements
from .versions import PgVersion, VersionError, default_version


class PlanFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


class PlanUsageError(Exception):
    """Bad input or environment: one line on standard error, exit code 2."""


@dataclass(frozen=True)
class PlanOptions:
    project: Path
    config: Path | None = None
    database_url: str | None = None
    sql_file: Path | None = None
    pg_version: str | None = None
    calibrate: bool = True
    write_sample_s: float = DEFAULT_WRITE_SAMPLE_S


# --- turning changes into a plan --------------------------------------------------------------


def describe_change(ch: Change) -> str:
    """A short human label: ``add column orders.note``, ``create index ix_a on orders``."""
    words = ch.kind.replace("_", " ")
    any_ch: Any = ch
    target = ch.table or getattr(any_ch, "name", None) or getattr(any_ch, "index", None)
    column: Any = getattr(any_ch, "column", None)
    column_name = column if isinstance(column, str) else getattr(column, "name", "")
    constraint: Any = getattr(any_ch, "constraint", None)
    own_name: Any = getattr(any_ch, "name", None)
    if constraint is not None and constraint.name:
        return f"{words} {constraint.name} on {target}"
    if isinstance(own_name, str) and own_name and ch.table is not None:
        return f"{words} {own_name} on {target}"
    if target is None:
        return words
    return f"{words} {target}.{column_name}" if column_name else f"{words} {target}"


def _transaction_for(changes: Sequence[Change], version: PgVersion, catalog: SchemaLookup | None) -> TransactionMode:
    for ch in changes:
        if effect_of(ch, version, catalog).transaction is TransactionUse.OUTSIDE_ONLY:
            return TransactionMode.AUTOCOMMIT
    return TransactionMode.MIGRATION


def steps_for(
    items: Iterable[tuple[str, Sequence[Change]]], version: PgVersion, catalog: SchemaLookup | None = None
) -> Plan:
    """One step per statement or operation, as written (no lock-safe rewriting)."""
    steps = []
    all_changes: list[Change] = []
    for sql, changes in items:
        if not changes:
            continue
        all_changes.extend(changes)
        description = "; ".join(dict.fromkeys(describe_change(ch) for ch in changes))
        steps.append(Step(description, Phase.EXPAND, sql=(sql.strip(),), changes=tuple(changes),
                          transaction=_transaction_for(changes, version, catalog)))
    return Plan(tuple(steps), tuple(all_changes))


def plan_for_changes(
    changes: Sequence[Change],
    version: PgVersion,
    *,
    catalog: SchemaLookup | None,
    facts: DatabaseFacts | None,
) -> Plan:
    """The planner's lock-safe plan for ``changes``, with the policy of ``[tool.helios-migrate]``."""
    try:
        policy = PlanPolicy.from_config(load_config(start=Path.cwd()))
    except ConfigError as exc:
        raise PlanUsageError(str(exc)) from None
    return plan_changes(list(changes), version, catalog=catalog, facts=facts, policy=policy)


def _plan_steps_of(op: Any) -> tuple[Step, ...] | None:
    """The steps of an operation the Alembic plugin already planned (it carries them), else
    ``None``.  Duck-typed: the core does not import the plugin."""
    steps = getattr(op, "steps", None)
    if isinstance(steps, tuple) and all(isinstance(s, Step) for s in steps):
        return steps
    return None


def _describes_no_change(op: Any) -> bool:
    try:
        return bool(op.to_diff_tuple() == ())
    except Exception:  # op.execute and other operations without a diff form are changes
        return False


def planned_steps(ops: Sequence[Any], version: PgVersion) -> Plan | None:
    """When the Alembic plugin planned the revision (an operation carries its plan), the steps the
    revision holds: each plan's own steps, and the operations it kept as written, planned as
    written in the migration transaction (as the revision header counts them); ``None`` when
    nothing was planned by the plugin."""
    if not any(_plan_steps_of(op) is not None for op in ops):
        return None

    try:
        policy = PlanPolicy.from_config(load_config(start=Path.cwd()))
    except ConfigError as exc:
        raise PlanUsageError(str(exc)) from None
    steps: list[Step] = []
    source: list[Change] = []
    for op in ops:
        own = _plan_steps_of(op)
        if own is not None:
            steps.extend(own)
            source.extend(ch for step in own for ch in step.changes)
            continue
        if _describes_no_change(op):
            continue  # the plugin's comments, policy line and guards
        try:
            changes = changes_from_op(op)
        except Exception:  # as the revision header: an operation it cannot read is not a step
            continue
        if not changes:
            continue
        tables = {ch.table for ch in changes if ch.table is not None}
        try:
            steps.extend(plan_changes(changes, version, policy=policy, new_tables=tables).steps)
        except UnrenderableChange:  # a data migration: its step is the operation's own SQL
            steps.extend(steps_for([(render_sql(op), changes)], version).steps)
        source.extend(changes)
    return Plan(tuple(steps), tuple(source))


# --- inputs -----------------------------------------------------------------------------------


@dataclass
class _Gathered:
    plan: Plan
    version: PgVersion
    facts: DatabaseFacts | None
    throughput: Throughput
    catalog: SchemaLookup | None = None


def _flatten(ops: Iterable[Any]) -> Iterator[Any]:
    for op in ops:
        inner = getattr(op, "ops", None)
        if inner is not None and type(op).__name__ in ("ModifyTableOps", "UpgradeOps", "DowngradeOps"):
            yield from _flatten(inner)
        else:
            yield op


def _measure(conn: Any, plan: Plan, options: PlanOptions) -> tuple[DatabaseFacts, Throughput]:
    facts = collect_facts(conn, tables_of_plan(plan), write_sample_s=options.write_sample_s or None)
    tp = calibrate(conn, server=facts.server) if options.calibrate else default_throughput()
    return facts, tp


def _alembic_config(options: PlanOptions) -> Any:
    root = options.project
    ini = options.config or (root / "alembic.ini")
    pyproject = root / "pyproject.toml"
    if not ini.is_file() and not pyproject.is_file():
        raise PlanUsageError(f"{root}: no alembic.ini or pyproject.toml (pass --config or a project directory)")
    cfg = AlembicConfig(
        file_=str(ini) if ini.is_file() else None,
        toml_file=str(pyproject) if pyproject.is_file() else None,
    )
    if options.database_url:
        cfg.set_main_option("sqlalchemy.url", options.database_url.replace("%", "%%"))
    return cfg


def gather_from_project(options: PlanOptions) -> _Gathered:
    cfg = _alembic_config(options)
    captured: list[_Gathered] = []

    def hook(context: Any, revision: Any, directives: list[Any]) -> None:
        conn = context.connection
        version = default_version()
        info = getattr(getattr(conn, "dialect", None), "server_version_info", None)
        if info:
            version = PgVersion(int(info[0]), int(info[1]) if len(info) > 1 else 0)
        catalog: SchemaLookup | None = None
        raw = getattr(conn, "connection", None)
        driver = getattr(raw, "driver_connection", None)
        if driver is not None and type(driver).__module__.startswith("psycopg"):
            catalog = LiveCatalog(driver)
        # Every revision of the run (a contract phase may be split into a second one), in order.
        ops = [op for script in directives for up in getattr(script, "upgrade_ops_list", ())
               for op in _flatten(up.ops)]
        planned = planned_steps(ops, version)
        if planned is not None:
            # The plugin planned the revision: show its steps, the ones the revision would hold.
            plan = planned
            facts, tp = _measure(conn, plan, options) if conn is not None and plan.steps else (None, default_throughput())
        else:
            items = [(render_sql(op), changes_from_op(op)) for op in ops]
            fallback = steps_for(items, version, catalog)
            plan = fallback
            facts = None
            tp = default_throughput()
            if conn is not None and fallback.steps:
                facts, tp = _measure(conn, fallback, options)
                try:
                    plan = plan_for_changes(fallback.source, version, catalog=catalog, facts=facts)
                except UnrenderableChange:  # a data migration: the operations as written
                    plan = fallback
                if tables_of_plan(plan) != tables_of_plan(fallback):
                    facts, tp = _measure(conn, plan, options)
        captured.append(_Gathered(plan, version, facts, tp, catalog))
        directives[:] = []  # nothing is written

    saved_argv = sys.argv
    try:
        sys.argv = ["alembic"]
        with _chdir(options.project):
            alembic_command.revision(cfg, message="helios plan", autogenerate=True, process_revision_directives=hook)
    except CommandError as exc:
        raise PlanUsageError(f"alembic: {exc}") from None
    finally:
        sys.argv = saved_argv
    if not captured:
        raise PlanUsageError("autogenerate did not run (env.py did not call run_migrations?)")
    return captured[0]


@contextmanager
def _chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _resolve_version(pg_version: str | None) -> PgVersion:
    if pg_version is None:
        return default_version()
    try:
        version = PgVersion.parse(pg_version)
    except VersionError as exc:
        raise PlanUsageError(str(exc)) from None
    if not version.supported:
        raise PlanUsageError(f"PostgreSQL {version} is not supported (13 to 18 are)")
    return version


def gather_from_sql(options: PlanOptions) -> _Gathered:
    assert options.sql_file is not None
    try:
        text = options.sql_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanUsageError(f"{options.sql_file}: cannot read: {exc}") from None
    try:
        statements = parse_statements(text, str(options.sql_file))
    except SqlSyntaxError as exc:
        raise PlanUsageError(str(exc)) from None
    items = [(st.sql, st.changes) for st in statements]
    url = options.database_url
    if url is None:
        version = _resolve_version(options.pg_version)
        return _Gathered(steps_for(items, version), version, None, default_throughput())


    try:
        conn = connect_read_only(url)
    except DatabaseUnreachable as exc:
        raise PlanUsageError(str(exc)) from None
    try:
        catalog = LiveCatalog(conn)
        version = catalog.version
        plan = steps_for(items, version, catalog)
        facts, tp = _measure(conn, plan, options)
        return _Gathered(plan, version, facts, tp, catalog)
    except psycopg.Error as exc:
        raise PlanUsageError(f"cannot read catalog facts: {first_line(exc)}") from None
    finally:
        conn.close()


def build_impact(options: PlanOptions) -> PlanImpact:
    gathered = gather_from_sql(options) if options.sql_file is not None else gather_from_project(options)
    return estimate_plan(gathered.plan, gathered.facts, gathered.version,
                         throughput=gathered.throughput, catalog=gathered.catalog)


def render(impact: PlanImpact, output_format: PlanFormat) -> str | None:
    if output_format is PlanFormat.JSON:
        return to_json(impact) + "\n"
    if output_format is PlanFormat.MARKDOWN:
        return to_markdown(impact)
    return None


def _print_text(impact: PlanImpact) -> None:
    console = Console(highlight=False)
    if not impact.steps:
        console.print("No changes: the models match the database; autogenerate would write an empty revision.")
        return
    render_table(impact, console)
    console.print()
    for s in impact.steps:
        console.print(f"[bold]{s.number}.[/bold] {escape(s.description)}  [dim]({s.step.phase.value}, "
                      f"{s.step.transaction.value})[/dim]")
        for sql in s.step.sql:
            console.print("   " + escape(sql), soft_wrap=True)


# --- command ----------------------------------------------------------------------------------


def plan_command(
    project: Annotated[
        Path | None,
        typer.Argument(help="Alembic project directory (default: the current directory).", show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="HELIOS_DATABASE_URL",
                     help="Database to compare against and read facts from (default: sqlalchemy.url "
                     "of the Alembic configuration). Read-only."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Alembic configuration file (default: alembic.ini).")
    ] = None,
    sql_file: Annotated[
        Path | None,
        typer.Option("--sql", help="Estimate the statements of this SQL file instead of running autogenerate."),
    ] = None,
    pg_version: Annotated[
        str | None,
        typer.Option("--pg-version", help="With --sql and no database: the PostgreSQL version to assume."),
    ] = None,
    no_calibrate: Annotated[
        bool, typer.Option("--no-calibrate", help="Use the documented default throughput instead of a timed scan.")
    ] = False,
    write_sample: Annotated[
        float,
        typer.Option("--write-sample", help="Seconds between the two samples that measure write rates (0: skip)."),
    ] = DEFAULT_WRITE_SAMPLE_S,
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.TEXT,
) -> None:
    """Show the plan autogenerate would write and its impact on the live database, writing nothing.

    Exit codes: 0 shown, 2 usage, configuration or connection errors.
    """
    options = PlanOptions(
        project=(project or Path.cwd()).resolve(),
        config=config.resolve() if config else None,
        database_url=database_url,
        sql_file=sql_file,
        pg_version=pg_version,
        calibrate=not no_calibrate,
        write_sample_s=max(write_sample, 0.0),
    )
    try:
        impact = build_impact(options)
    except PlanUsageError as exc:
        typer.echo(f"helios-migrate plan: {exc}", err=True)
        raise typer.Exit(2) from None
    text = render(impact, output_format)
    if text is None:
        _print_text(impact)
    else:
        sys.stdout.write(text)
