#!/usr/bin/env python3
"""Developer entry point; needs only Python >= 3.10.

    python3 dev.py test [pytest args]   # the test-suite, on real PostgreSQL servers
    python3 dev.py demo [demo args]     # the embedded-PostgreSQL demo

Both create ``.venv`` when it is missing and (re)install the project with its ``dev`` extras when
``pyproject.toml`` changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".helios-install-stamp"
USAGE = "usage: python3 dev.py {test,demo} [args...]"


def ensure_venv() -> None:
    if not PYTHON.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True, clear=VENV.exists())
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(
                f"dev.py: could not create {VENV}: {exc}\n"
                "On Debian/Ubuntu install the venv module first: apt-get install python3-venv"
            )
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    wanted = hashlib.sha256(pyproject + sys.version.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print('dev.py: installing the project (pip install -e ".[dev]")', flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check"]
    if subprocess.call([*pip, "install", "-q", "-e", ".[dev]"], cwd=ROOT) != 0:
        sys.exit('dev.py: pip install -e ".[dev]" failed (see above)')
    STAMP.write_text(wanted + "\n")


def truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def run_tests(args: list[str]) -> int:
    env = dict(os.environ)
    # CI must prove every supported server it claims to test; locally PG 18 (embedded) is enough.
    env.setdefault("HELIOS_REQUIRE_PG", "15,18" if truthy("CI") else "18")
    parallel = (
        []
        if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args)
        else ["-n", "2"]
    )
    command = [str(PYTHON), "-m", "pytest", *parallel, *args]
    print(
        f"dev.py: HELIOS_REQUIRE_PG={env['HELIOS_REQUIRE_PG']} {' '.join(command[1:])}", flush=True
    )
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code == 5:
        print("dev.py: pytest collected no tests; that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "demo"):
        print(USAGE, file=sys.stderr)
        return 2
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py may be started by any python3
        print("dev.py: Python >= 3.10 is needed", file=sys.stderr)
        return 2
    ensure_venv()
    command, args = argv[0], argv[1:]
    if command == "test":
        return run_tests(args)
    return subprocess.call([str(BIN / "helios-migrate"), "demo", *args], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
