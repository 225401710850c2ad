"""``helios-migrate pause`` / ``resume``: hold running backfills between batches, and let them go.

A running backfill asks :class:`~helios_migrate.throttle.Throttle` before each batch whether it
may run; one of the answers is the pause file (``pause_file`` in ``[tool.helios-migrate]``,
default ``.helios-migrate.pause``, relative to the directory ``alembic`` runs in).  ``pause``
creates that file, ``resume`` removes it: the backfill finishes the batch that is running (its
row locks are released at its commit), waits, and continues where it was when the file is gone.
A backfill paused longer than ``throttle_max_wait`` stops cleanly and resumes on the next run.
"""

from __future__ import annotations

import datetime
import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from .config import ConfigError, load_config

__all__ = ["pause_command", "pause_file", "resume_command"]

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The directory alembic runs in (its pyproject.toml names the pause file). "
        "Default: the current directory.",
    ),
]


def pause_file(directory: Path) -> Path:
    """Where the runtime of a migration started in ``directory`` looks for the pause file."""
    try:
        settings = load_config(start=directory).runtime
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.pause_file:
        typer.echo(
            "error: pause_file is empty in [tool.helios-migrate]: running migrations cannot be "
            "paused; set it (default \".helios-migrate.pause\")",
            err=True,
        )
        raise typer.Exit(2)
    path = Path(settings.pause_file)
    return path if path.is_absolute() else directory / path


def _directory(directory: Path | None) -> Path:
    here = Path.cwd() if directory is None else directory
    if not here.is_dir():
        typer.echo(f"error: --dir {here}: not a directory", err=True)
        raise typer.Exit(2)
    return here


def pause_command(
    directory: DirOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, written into the pause file.")] = "",
) -> None:
    """Pause running backfills after their current batch (until `helios-migrate resume`)."""
    path = pause_file(_directory(directory))
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        path.write_text(f"paused {stamp} by {_who()}{': ' + reason if reason else ''}\n", encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot write the pause file {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"paused: running backfills wait before their next batch while {path} exists "
        "(helios-migrate resume removes it; after throttle_max_wait a backfill stops, resumable)"
    )


def resume_command(directory: DirOption = None) -> None:
    """Let paused backfills continue (removes the pause file)."""
    path = pause_file(_directory(directory))
    try:
        path.unlink()
    except FileNotFoundError:
        typer.echo(f"not paused: {path} does not exist")
        return
    except OSError as exc:
        typer.echo(f"error: cannot remove the pause file {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"resumed: removed {path}; paused backfills continue within a few seconds")


def _who() -> str:
    try:
        return f"{getpass.getuser()} (pid {os.getpid()})"
    except (KeyError, OSError):
        return f"pid {os.getpid()}"
