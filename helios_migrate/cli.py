"""The ``helios-migrate`` command line.

Each command lives in its own module, which is imported only when that command runs (or when
``--help`` lists the commands): ``check`` on one file pays for the rule engine, not for ``verify``,
the LLM layer or psycopg.  ``helios-migrate --version`` is answered by :mod:`helios_migrate.__main__`
before this module is imported.
"""

from __future__ import annotations

import gc
import importlib
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from . import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "locks": ("helios_migrate.locks_command", "locks_command"),
    "check": ("helios_migrate.check.command", "check_command"),
    "plan": ("helios_migrate.plan_command", "plan_command"),
    "verify": ("helios_migrate.verify.command", "verify_command"),
    "init": ("helios_migrate.init_command", "init_command"),
    "demo": ("helios_migrate.demo", "demo_command"),
    "explain": ("helios_migrate.llm.cli", "explain_command"),
    "design": ("helios_migrate.llm.cli", "design_command"),
    "llm": ("helios_migrate.llm.cli", "llm_app"),
    "review": ("helios_migrate.review.command", "review_command"),
    "diff": ("helios_migrate.diff.command", "diff_command"),
    "docs": ("helios_migrate.schema_docs.command", "docs_command"),
    "indexes": ("helios_migrate.indexes.command", "indexes_command"),
    "pause": ("helios_migrate.pause_command", "pause_command"),
    "resume": ("helios_migrate.pause_command", "resume_command"),
}
"""Command name -> (module, attribute): a typer command function, or a ``typer.Typer`` group."""


def _click_command(name: str, target: Any) -> Any:
    """The click command typer builds for ``target`` (click is typer's own, vendored copy)."""
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    holder.command(name)(target)
    return typer.main.get_command(holder)


class LazyCommands(typer.core.TyperGroup):
    """The root group: :data:`COMMANDS`, each imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = _click_command(cmd_name, getattr(importlib.import_module(module), attribute))
            self.commands[cmd_name] = command
        return command


app = typer.Typer(
    name="helios-migrate",
    cls=LazyCommands,
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


GC_THRESHOLDS = (20_000, 50, 1000)
"""The command line's cyclic garbage collector thresholds (Python's: 700, 10, 10).  A command is a
short-lived process that builds many long-lived objects (SQLAlchemy and Alembic structures, parse
trees, findings) and few cycles: with the default thresholds, full collections walking everything
alive took ~15-20% of a ``check``'s CPU on a 344-revision project; memory stays the same within a
few MB.  Only the command line sets them: a revision run by ``alembic`` keeps its process's own."""


def main() -> None:
    """Run the command line."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        app(prog_name="helios-migrate")
    finally:
        # The interpreter's last collection at exit walks every object still alive; none of them
        # needs it (exit handlers and finalizers still run).  It cost a 344-revision check ~20% of
        # its wall time.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
