"""The ``helios-migrate verify`` command."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

from .report import render
from .runner import VerifyOptions, VerifyUsageError, run_verify

EXIT_USAGE = 2


class VerifyFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def verify_command(
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="alembic.ini of the project (default: ./alembic.ini)."),
    ] = None,
    revision_range: Annotated[
        str | None,
        typer.Option("--range", help="Revisions to verify, A:B (inclusive; A: or :B open). Default: all."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="HELIOS_VERIFY_DATABASE_URL",
            help="A scratch database to use instead of a temporary server. Its tables must be empty.",
        ),
    ] = None,
    allow_nonempty: Annotated[
        bool, typer.Option("--allow-nonempty", help="Accept a --database-url whose tables hold rows.")
    ] = False,
    pg: Annotated[
        str | None,
        typer.Option("--pg", help="Major version of the temporary server (embedded 18; 15 from Debian's binaries)."),
    ] = None,
    rows: Annotated[int, typer.Option("--rows", min=0, help="Synthetic rows per table.")] = 10_000,
    load: Annotated[
        bool, typer.Option("--load", help="Run writers and readers during the migration; report stalls.")
    ] = False,
    stairway: Annotated[
        bool, typer.Option("--stairway/--no-stairway", help="Downgrade and upgrade again after each upgrade.")
    ] = True,
    settle_ms: Annotated[
        int,
        typer.Option("--settle-ms", min=0, help="Pause at the end of each DDL command (locks held) so fast statements are sampled."),
    ] = 20,
    output_format: Annotated[VerifyFormat, typer.Option("--format", help="Report format.")] = VerifyFormat.TEXT,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the report to this file instead of stdout.")
    ] = None,
) -> None:
    """Run revisions on a throwaway PostgreSQL with synthetic rows: observed locks and rewrites
    against the prediction, and upgrade / downgrade / upgrade with schema and data compared."""
    err = Console(stderr=True, highlight=False)
    quiet = output_format is not VerifyFormat.TEXT and output is None

    def echo(msg: str) -> None:
        err.print(f"[dim]verify: {msg}[/dim]")

    options = VerifyOptions(
        config_file=config,
        revision_range=revision_range,
        database_url=database_url,
        allow_nonempty=allow_nonempty,
        pg=pg,
        rows=rows,
        load=load,
        stairway=stairway,
        settle_s=settle_ms / 1000,
    )
    progress = Progress(TextColumn("filling {task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                        console=err, transient=True, disable=rows < 100_000)
    tasks: dict[str, TaskID] = {}

    def on_fill(table: str, done: int, wanted: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=wanted)
        progress.update(tasks[table], completed=done)

    try:
        with progress:
            report = run_verify(options, echo=None if quiet else echo, progress=on_fill)
    except VerifyUsageError as exc:
        err.print(Text.assemble(("error: ", "red"), str(exc)))
        raise typer.Exit(EXIT_USAGE) from None
    color = output is None and output_format is VerifyFormat.TEXT and sys.stdout.isatty()
    text = render(report, output_format.value, color=color)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    raise typer.Exit(report.exit_code)
