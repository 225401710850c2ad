"""Commands of the LLM layer: ``llm check``, ``explain`` and ``design``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import psycopg
import typer

from ..config import Config, ConfigError, load_config
from ..pgserver import ServerStartError
from ..versions import PgVersion, VersionError, default_version
from .check import check_connection
from .client import LlmClient, LlmLog
from .config import LlmConfig, LlmConfigError, LlmNotConfigured, load_llm_config
from .design import SuperuserRefused, design_schema, scratch_database
from .design_from_models import DescribeError, describe_metadata, load_models_metadata
from .explain import build_facts, deterministic_summary, explain
from .sources import SourceError, migration_source

llm_app = typer.Typer(
    name="llm",
    help="The optional LLM assistant (any OpenAI-compatible endpoint).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LlmLogOption = Annotated[
    Path | None,
    typer.Option("--llm-log", help="Append every LLM request and answer to this file (JSON lines)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="pyproject.toml to read [tool.helios-migrate.llm] from (default: the nearest)."),
]


def _load(config_path: Path | None) -> LlmConfig:
    try:
        return load_llm_config(config_path)
    except LlmConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _project_config() -> Config:
    try:
        return load_config(start=Path.cwd())
    except ConfigError as exc:
        typer.echo(f"warning: {exc}; using the defaults", err=True)
        return Config()


def _client(config: LlmConfig, llm_log: Path | None) -> LlmClient | None:
    if not config.enabled:
        return None
    try:
        return LlmClient(config, log=LlmLog(llm_log) if llm_log else None)
    except LlmNotConfigured as exc:
        typer.echo(f"note: {exc}; continuing without the LLM", err=True)
        return None


@llm_app.command("check")
def llm_check(config: ConfigOption = None, llm_log: LlmLogOption = None) -> None:
    """Send one tiny request to the configured endpoint and say precisely what failed, if anything."""
    result = check_connection(_load(config), log=LlmLog(llm_log) if llm_log else None)
    typer.echo(result.message, err=not result.ok)
    raise typer.Exit(0 if result.ok else 2)


def explain_command(
    target: Annotated[str, typer.Argument(help="A .sql file, a revision file (.py) or a revision id of the Alembic project here.")],
    pg_version: Annotated[
        str | None, typer.Option("--pg-version", help="PostgreSQL version to assume (13-18).")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Only the summary built from the facts.")] = False,
    config: ConfigOption = None,
    llm_log: LlmLogOption = None,
) -> None:
    """Explain a migration in plain English: what it does, what it locks, how long, what to watch."""
    try:
        sql, label, source_lines = migration_source(target, Path.cwd())
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    project_config = _project_config()
    try:
        version = PgVersion.parse(pg_version) if pg_version else (project_config.pg_version or default_version())
    except VersionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        facts = build_facts(sql, version=version, config=project_config, source=label, source_lines=source_lines)
    except Exception as exc:
        typer.echo(f"error: {label}: {exc}", err=True)
        raise typer.Exit(2) from None
    client = None if no_llm else _client(_load(config), llm_log)
    typer.echo(f"{label} on PostgreSQL {version}")
    if client is None:
        typer.echo(deterministic_summary(facts))
        return
    result = explain(facts, client)
    if result.source == "facts":
        typer.echo("note: the LLM summary was rejected (" + "; ".join(result.problems) + "); showing the facts", err=True)
        typer.echo(deterministic_summary(facts))
        return
    if result.problems:
        typer.echo("note: sentences with numbers not in the facts were removed", err=True)
    typer.echo(f"Summary by {client.model} (numbers checked against helios-migrate's facts):")
    typer.echo(result.text)
    typer.echo("\nFacts (helios-migrate's knowledge base and safety rules):")
    typer.echo(deterministic_summary(facts))


def design_command(
    description: Annotated[str, typer.Argument(help="What the schema is for, in plain words.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the models module here.")] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Your existing models.py (imported, as your code) to refine with DESCRIPTION."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Scratch database to create the schema in (in a transaction, rolled back). Default: an embedded PostgreSQL."),
    ] = None,
    allow_superuser: Annotated[
        bool,
        typer.Option("--allow-superuser", help="Accept a --database-url that connects as a superuser."),
    ] = False,
    config: ConfigOption = None,
    llm_log: LlmLogOption = None,
) -> None:
    """Design SQLAlchemy 2 models and their DDL from a description; proven on a real PostgreSQL.

    The LLM answers a schema description (JSON data); helios-migrate checks it and writes the
    models and the DDL itself.  Nothing the LLM sends is executed as code.
    """
    llm_config = _load(config)
    try:
        llm_config.require()
    except LlmNotConfigured as exc:
        typer.echo(f"error: design needs an LLM. {exc}. Then run `helios-migrate llm check`.", err=True)
        raise typer.Exit(2) from None
    client = LlmClient(llm_config, log=LlmLog(llm_log) if llm_log else None)
    existing = None
    if from_file is not None:
        try:
            existing = describe_metadata(load_models_metadata(from_file))
        except DescribeError as exc:
            typer.echo(f"error: --from {from_file}: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        with scratch_database(database_url, allow_superuser=allow_superuser) as (executor, version, where):
            result = design_schema(
                description, client, executor=executor, version=version,
                config=_project_config(), existing=existing,
            )
    except SuperuserRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (ServerStartError, RuntimeError, psycopg.Error) as exc:
        typer.echo(f"error: no scratch PostgreSQL to validate on: {exc}", err=True)
        raise typer.Exit(2) from None
    if result.models_py is None:
        typer.echo(
            f"error: no design passed validation after {result.attempts} attempt(s):\n"
            + "\n".join(f"  - {r}" for r in result.reasons),
            err=True,
        )
        raise typer.Exit(1)
    if output is not None:
        output.write_text(result.models_py, encoding="utf-8")
        typer.echo(f"wrote {output} ({len(result.tables)} table(s): {', '.join(result.tables)})")
    else:
        typer.echo(result.models_py.rstrip())
    typer.echo(f"\n-- DDL (created without error on {where}; checked by the schema rules)")
    for statement in result.ddl:
        typer.echo(statement.rstrip() + ";")
    for finding in result.findings:
        typer.echo(f"-- note: {finding}")
    for note in result.notes:
        typer.echo(f"-- {note}")
