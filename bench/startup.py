"""Benchmark: how long ``helios-migrate`` takes to start, next to Python itself and squawk.

Times, as the median wall time of N runs each (a new process every run):

* ``python -c pass`` -- the floor every Python command pays;
* ``helios-migrate --version``;
* ``helios-migrate check one.sql`` on a one-statement file written to a temporary directory;
* ``squawk one.sql`` when a ``squawk`` executable is on PATH (``pip install squawk-cli``).

Usage::

    python bench/startup.py [--runs 10] [--budget-version 0.15] [--budget-check 0.4]

Python modules are timed with their bytecode cached, as an installed package has it: the runs use a
bytecode cache in the temporary directory (``PYTHONPYCACHEPREFIX``), filled by one warm-up run that
is not timed.  Exit code 1 when a budget is exceeded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ONE_SQL = "CREATE INDEX orders_created_at_idx ON orders (created_at);\n"


def _helios_command() -> list[str]:
    script = Path(sys.executable).with_name("helios-migrate")
    if script.is_file():
        return [str(script)]
    found = shutil.which("helios-migrate")
    if found:
        return [found]
    return [sys.executable, "-m", "helios_migrate"]


def median_wall(argv: Sequence[str], runs: int, cwd: Path, env: dict[str, str]) -> float:
    """Median wall time in seconds of ``runs`` runs of ``argv`` (after one untimed warm-up)."""
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget-version", type=float, default=0.15, help="seconds")
    parser.add_argument("--budget-check", type=float, default=0.4, help="seconds")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="helios-startup-") as tmp:
        work = Path(tmp)
        (work / "one.sql").write_text(ONE_SQL, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        helios = _helios_command()
        rows: list[tuple[str, float | None, float | None]] = [
            ("python -c pass", median_wall([sys.executable, "-c", "pass"], args.runs, work, env), None),
            ("helios-migrate --version",
             median_wall([*helios, "--version"], args.runs, work, env), args.budget_version),
            ("helios-migrate check one.sql",
             median_wall([*helios, "check", "one.sql"], args.runs, work, env), args.budget_check),
        ]
        beside = Path(sys.executable).with_name("squawk")
        squawk = str(beside) if beside.is_file() else shutil.which("squawk")
        rows.append(("squawk one.sql",
                     median_wall([squawk, "one.sql"], args.runs, work, env) if squawk else None, None))

    floor = rows[0][1] or 0.0
    squawk_time = rows[-1][1]
    print(f"median wall time of {args.runs} runs; bytecode cached; {os.cpu_count()} CPUs")
    print(f"{'command':<30} {'seconds':>8} {'x python':>9} {'x squawk':>9}  budget")
    over = False
    for name, seconds, budget in rows:
        if seconds is None:
            print(f"{name:<30} not installed (pip install squawk-cli)")
            continue
        vs_python = f"{seconds / floor:.1f}" if floor else "-"
        vs_squawk = f"{seconds / squawk_time:.1f}" if squawk_time else "-"
        verdict = ""
        if budget is not None:
            ok = seconds <= budget
            over = over or not ok
            verdict = f"<= {budget:.2f} {'ok' if ok else 'EXCEEDED'}"
        print(f"{name:<30} {seconds:>8.3f} {vs_python:>9} {vs_squawk:>9}  {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
