"""The ``helios-migrate`` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from . import __version__
from .locks_command import OutputFormat, run_locks

app = typer.Typer(
    name="helios-migrate",
    help="Lock-safe PostgreSQL schema changes for Alembic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"helios-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Lock-safe PostgreSQL schema changes for Alembic."""


@app.command()
def locks(
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


@app.command()
def demo(
    workdir: Annotated[
        str | None,
        typer.Option("--workdir", help="Where to keep the embedded PostgreSQL data (default: a temporary directory)."),
    ] = None,
) -> None:
    """Start an embedded PostgreSQL, create a sample schema with rows, and explain a migration's locks."""
    from .demo import run_demo

    raise typer.Exit(run_demo(workdir))


# Commands implemented in their own modules are registered below.
from .check.command import check_command  # noqa: E402

app.command("check")(check_command)
from .init_command import init_command  # noqa: E402

app.command("init")(init_command)
from .llm.cli import design_command, explain_command, llm_app  # noqa: E402

app.add_typer(llm_app, name="llm")
app.command("explain")(explain_command)
app.command("design")(design_command)
app.command("plan")(__import__("helios_migrate.plan_command", fromlist=["plan_command"]).plan_command)
app.command("verify")(__import__("helios_migrate.verify.command", fromlist=["verify_command"]).verify_command)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="helios-migrate")


if __name__ == "__main__":  # pragma: no cover
    main()
