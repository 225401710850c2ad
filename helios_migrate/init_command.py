"""``helios-migrate init``: enable the Alembic plugin in an existing ``env.py``.

It adds ``autogenerate_plugins=["alembic.autogenerate.*", "helios"],`` to every
``context.configure(`` call that does not have it, shows the change as a unified diff and asks
before writing (unless ``--yes``).  When it cannot find ``context.configure(`` it prints exactly
what to add and where.
"""

from __future__ import annotations

import configparser
import difflib
import re
from pathlib import Path
from typing import Annotated

import typer

PLUGIN_LINE = 'autogenerate_plugins=["alembic.autogenerate.*", "helios"],'

MANUAL = f"""Add this argument to the context.configure(...) call used for online migrations in env.py:

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        {PLUGIN_LINE}
    )

(Alembic 1.18 or later.)  If env.py already passes process_revision_directives, use instead:

    from alembic_plugin.env_hook import chain
    context.configure(..., process_revision_directives=chain(your_hook))
"""


def add_plugin_line(source: str) -> str | None:
    """``source`` with the plugin argument added to each ``context.configure(`` call that has a
    ``connection=`` argument; ``None`` when there is no such call to change."""
    if "autogenerate_plugins" in source:
        return source
    out: list[str] = []
    changed = False
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        out.append(line)
        m = re.match(r"^(?P<indent>[ \t]*)(?:\w+\.)?configure\(\s*$", line)
        if not m:
            continue
        # The call's arguments are on the following lines: take their indentation.
        following = lines[i + 1] if i + 1 < len(lines) else ""
        call: list[str] = []
        for arg in lines[i + 1 :]:
            if arg.strip().startswith(")"):
                break
            call.append(arg)
        if not any(re.match(r"\s*connection\s*=", arg) for arg in call):
            continue  # the offline (url=...) configure: plugins matter only online
        arg_indent = re.match(r"^[ \t]*", following)
        indent = arg_indent.group(0) if arg_indent and following.strip() else m.group("indent") + "    "
        out.append(f"{indent}{PLUGIN_LINE}\n")
        changed = True
    return "".join(out) if changed else None


def init_command(
    env_py: Annotated[
        Path | None,
        typer.Argument(
            help="The project's env.py (default: from alembic.ini's script_location here, else "
            "./migrations/env.py or ./alembic/env.py)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
) -> None:
    """Enable the helios Alembic plugin in env.py, so autogenerate writes lock-safe plans."""
    path = env_py if env_py is not None else _find_env_py(Path.cwd())
    if path is None or not path.is_file():
        where = (
            f" at {path}"
            if path is not None
            else " (looked in alembic.ini's script_location, ./migrations, ./alembic and here)"
        )
        typer.echo(f"env.py not found{where}. Pass its path.\n\n{MANUAL}", err=True)
        raise typer.Exit(1)
    source = path.read_text(encoding="utf-8")
    if "autogenerate_plugins" in source:
        typer.echo(f"{path}: already sets autogenerate_plugins; make sure the list contains \"helios\".")
        raise typer.Exit(0)
    new = add_plugin_line(source)
    if new is None:
        typer.echo(f"{path}: no context.configure( call with a connection found.\n\n{MANUAL}", err=True)
        raise typer.Exit(1)
    diff = difflib.unified_diff(
        source.splitlines(keepends=True), new.splitlines(keepends=True), str(path), str(path)
    )
    typer.echo("".join(diff))
    if not yes and not typer.confirm(f"Write {path}?", default=True):
        typer.echo("Nothing written.")
        raise typer.Exit(1)
    path.write_text(new, encoding="utf-8")
    typer.echo(f"{path}: the helios plugin is enabled; run `alembic revision --autogenerate`.")


def _find_env_py(here: Path) -> Path | None:
    """``env.py`` of the Alembic project in ``here``: from ``alembic.ini``'s ``script_location``
    (``%(here)s`` and relative paths resolved as Alembic does), else the usual folders."""
    ini = here / "alembic.ini"
    if ini.is_file():
        parser = configparser.ConfigParser(defaults={"here": str(here)})
        try:
            parser.read(ini, encoding="utf-8")
            location = parser.get("alembic", "script_location", fallback=None)
        except configparser.Error:
            location = None
        if location and ":" not in location.replace(str(here), ""):  # not a package:resource form
            candidate = Path(location)
            candidate = (candidate if candidate.is_absolute() else here / candidate) / "env.py"
            if candidate.is_file():
                return candidate
    for name in ("migrations/env.py", "alembic/env.py", "env.py"):
        if (here / name).is_file():
            return here / name
    return None
