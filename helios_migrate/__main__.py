"""``helios-migrate`` and ``python -m helios_migrate``.

``--version`` is answered here, before the command line (typer, click) is imported.
"""

from __future__ import annotations

import sys

from . import __version__


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"helios-migrate {__version__}\n")
        return
    from .cli import main as run  # lazy: --version answers without the command line library

    run()


if __name__ == "__main__":  # pragma: no cover
    main()
