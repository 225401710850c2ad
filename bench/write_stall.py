#!/usr/bin/env python3
"""Longest write stall: plain Alembic vs helios-migrate, on the same changes, under the same writer.

    python bench/write_stall.py                      # 1,000,000 orders, every change, PostgreSQL 18
    python bench/write_stall.py --rows 200000 --changes public_id,item_count
    python bench/write_stall.py --server debian      # PostgreSQL 15 from /usr/lib/postgresql/15/bin

For each change of the shop example's version 2 models (``examples/shop/models_v2.py``), on a fresh
copy of a database holding ``--rows`` orders:

(a) **plain**: the operations plain ``alembic revision --autogenerate`` emits for that change, rendered
    to SQL by Alembic, run in one transaction (as ``alembic upgrade`` runs a revision);
(b) **helios**: ``alembic revision --autogenerate`` with the helios plugin on a project whose models
    carry only that change, then ``alembic upgrade head`` -- whatever the plugin wrote (for a change
    that is already safe, that is the plain operation). With ``--helios handwritten``, or ``auto`` in
    an installation whose plugin writes no plans (probed once on the whole of version 2), the
    hand-written lock-safe steps of :data:`helios_migrate.demo.LOCK_SAFE_V2` run instead.

Both run while :class:`helios_migrate.workload.Workload` (2 writers: INSERT + UPDATE by id, 1 reader)
works on ``orders``; the longest time one write took while the migration ran is its write stall.
A last row, ``all of v2``, runs every change together (the revision a user would autogenerate).

Then each side goes back down on the same database, under the same load: plain runs the reverse of
Alembic's operations in one transaction; helios runs ``alembic downgrade -1`` (with
``HELIOS_ALLOW_DATA_LOSS=1``: undoing an added column drops it, which is data loss by definition).
``--no-downgrade`` measures the upgrades only.

For each helios run the bench also names the step that was running when its longest write stall
ended (from the lines the runtime logs as each step finishes): ``during``, printed under each table.

First, ``--baseline`` seconds of the same load run with no migration at all: the longest write stall
the machine causes by itself (other processes, disk flushes).  On a shared or busy machine that
floor can be tens of milliseconds; a stall near it says nothing about the migration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from helios_migrate import pgserver  # noqa: E402
from helios_migrate.demo import (  # noqa: E402
    ALEMBIC_TIMEOUT_S,
    LOCK_SAFE_V2,
    DemoError,
    alembic,
    copy_project,
    is_helios_plan,
    load_models,
    op_key,
    plain_ops,
    render_plain_sql,
    run_lock_safe,
    seed,
)
from helios_migrate.workload import Workload  # noqa: E402

# Each change as an edit of the version 1 models (examples/shop/models.py): (old, new) pairs.
IMPORTS = (
    "import enum\n",
    "import enum\nimport uuid\n\nfrom sqlalchemy import CheckConstraint, Uuid, text\n",
)
EDITS: dict[str, list[tuple[str, str]]] = {
    "column:currency": [
        (
            "    note: Mapped[str | None] = mapped_column(Text)\n",
            "    note: Mapped[str | None] = mapped_column(Text)\n"
            '    currency: Mapped[str] = mapped_column(String(3), server_default="EUR")\n',
        )
    ],
    "column:public_id": [
        (
            "    note: Mapped[str | None] = mapped_column(Text)\n",
            "    note: Mapped[str | None] = mapped_column(Text)\n"
            "    public_id: Mapped[uuid.UUID | None] = mapped_column(\n"
            '        Uuid, server_default=text("gen_random_uuid()")\n'
            "    )\n",
        )
    ],
    "column:referred_by_id": [
        (
            "referred_by_id: Mapped[int | None] = mapped_column(BigInteger)",
            'referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)',
        )
    ],
    "column:item_count": [
        (
            'item_count: Mapped[int] = mapped_column(Integer, server_default="0")',
            'item_count: Mapped[int] = mapped_column(BigInteger, server_default="0")',
        )
    ],
    "column:total": [
        (
            "total: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))",
            "total: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))",
        )
    ],
    "constraint:ck_orders_total_nonnegative": [
        (
            '    __tablename__ = "orders"\n',
            '    __tablename__ = "orders"\n'
            '    __table_args__ = (CheckConstraint("total >= 0", name="total_nonnegative"),)\n',
        )
    ],
}
SHORT = {key: key.split(":", 1)[1] for key in EDITS}
ALL = "all of v2"


@dataclass
class Run:
    mode: str
    how: str
    duration_s: float
    write_stall_s: float
    read_stall_s: float
    writes: int
    errors: int
    during: str = ""
    """The step that was running when the longest write stall ended (helios runs only)."""


@dataclass
class Row:
    change: str
    title: str
    plain: Run
    helios: Run
    plain_down: Run | None = None
    helios_down: Run | None = None

    @property
    def ratio(self) -> float:
        return self.plain.write_stall_s / max(self.helios.write_stall_s, 1e-4)

    @property
    def ratio_down(self) -> float | None:
        if self.plain_down is None or self.helios_down is None:
            return None
        return self.plain_down.write_stall_s / max(self.helios_down.write_stall_s, 1e-4)


_RUNTIME_LINE = re.compile(r"\[alembic\.helios\.runtime\] helios: (.*)")


def alembic_logged(
    project: Path, url: str, *args: str, env: dict[str, str] | None = None
) -> list[tuple[float, str]]:
    """``alembic *args`` in ``project``, as :func:`helios_migrate.demo.alembic` runs it, with each
    line it logs stamped (:func:`time.monotonic`, the load's clock) as it arrives: the runtime logs
    a line as each step finishes and every few seconds of a backfill."""
    full_env = {**os.environ, "SHOP_DATABASE_URL": url, "PYTHONPATH": str(project), **(env or {})}
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        [sys.executable, "-m", "alembic", *args], cwd=project, env=full_env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stderr is not None
        deadline = time.monotonic() + ALEMBIC_TIMEOUT_S
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))
            if time.monotonic() > deadline:
                proc.kill()
                raise DemoError(f"alembic {' '.join(args)} did not finish within {ALEMBIC_TIMEOUT_S:g} s")
        code = proc.wait()
    if code != 0:
        tail = [text for _, text in lines if text.strip()][-1:] or ["(no output)"]
        raise DemoError(f"alembic {' '.join(args)} failed (exit {code}): {tail[0]}")
    return lines


def step_at(lines: list[tuple[float, str]], when: float) -> str:
    """The step running at ``when``: the first runtime line logged at or after it (a step's line
    comes when it finishes, a backfill's also while it runs); "after the last step" past them."""
    for stamp, text in lines:
        found = _RUNTIME_LINE.search(text)
        if found and stamp >= when:
            message = found[1]
            return message if len(message) <= 90 else message[:89] + "…"
    return "after the last step"


def edited_models(v1: str, keys: list[str]) -> str:
    text = v1.replace(*IMPORTS)
    for key in keys:
        for old, new in EDITS[key]:
            if old not in text:
                raise DemoError(f"examples/shop/models.py changed: cannot apply {key} ({old!r})")
            text = text.replace(old, new, 1)
    return text


class Bench:
    def __init__(
        self, args: argparse.Namespace, base: Path, server: pgserver.RunningServer
    ) -> None:
        self.args = args
        self.base = base
        self.server = server
        self.template = "shop_template"
        self.counter = 0
        self.planner = False
        """Whether the plugin writes lock-safe plans (probed on the whole of version 2)."""

    def probe_planner(self) -> bool:
        """Autogenerate the whole of version 2 once: does the plugin write a helios plan?"""
        name, url = self.clone()
        project = self.base / "probe-project"
        try:
            copy_project(project)
            shutil.copyfile(project / "models_v2.py", project / "models.py")
            alembic(project, url, "revision", "--autogenerate", "-m", "probe")
            sources = [
                p.read_text()
                for p in (project / "migrations" / "versions").glob("*.py")
                if not p.name.startswith("0001_")
            ]
            self.planner = any(is_helios_plan(s) for s in sources)
        finally:
            pgserver.drop_database(self.server, name)
            shutil.rmtree(project, ignore_errors=True)
        return self.planner

    def build_template(self) -> None:
        url = pgserver.create_database(self.server, self.template, "template0")
        project = copy_project(self.base / "template-project")
        alembic(project, url, "upgrade", "head")
        began = time.monotonic()
        seed(url, self.args.rows, items=self.args.items)
        print(f"seeded {self.args.rows:,} orders in {time.monotonic() - began:.1f} s", flush=True)

    def clone(self) -> tuple[str, str]:
        self.counter += 1
        name = f"shop_{self.counter}"
        strategy = "file_copy" if self.server.version.major >= 15 else None
        url = pgserver.create_database(self.server, name, self.template, strategy=strategy)
        return name, url

    def under_load(self, url: str, mode: str, how: str, action: object) -> Run:
        assert callable(action)
        with Workload(
            url, "orders", writers=self.args.writers, readers=1, max_duration_s=1800, seed=7
        ) as load:
            time.sleep(0.3)
            t0 = time.monotonic()
            lines = action()
            t1 = time.monotonic()
            time.sleep(0.2)
        window = load.stalls_between(t0, t1)
        during = ""
        if isinstance(lines, list) and window.longest_write is not None:
            # The kind says what the stall could wait on: an insert never waits for a row lock.
            during = f"(an {window.longest_write.kind}) " + step_at(lines, window.longest_write.end)
        return Run(
            mode=mode,
            how=how,
            duration_s=round(t1 - t0, 3),
            write_stall_s=round(window.write_s, 4),
            read_stall_s=round(window.read_s, 4),
            writes=window.writes,
            errors=window.errors,
            during=during,
        )

    def plain(self, keys: list[str], plain_sql: str, down_sql: str | None) -> tuple[Run, Run | None]:
        name, url = self.clone()
        try:

            def apply(sql: str) -> None:
                with psycopg.connect(url) as conn:  # one transaction, as alembic upgrade runs it
                    conn.execute(sql.encode())
                    conn.commit()

            up = self.under_load(url, "plain", "Alembic's SQL, one transaction", lambda: apply(plain_sql))
            if down_sql is None:
                return up, None
            down = self.under_load(
                url, "plain", "Alembic's reverse SQL, one transaction", lambda: apply(down_sql)
            )
            return up, down
        finally:
            pgserver.drop_database(self.server, name)

    def helios(self, keys: list[str], v1_models: str) -> tuple[Run, Run | None]:
        name, url = self.clone()
        project = self.base / f"project-{self.counter}"
        try:
            copy_project(project)
            (project / "models.py").write_text(edited_models(v1_models, keys))
            use_plugin = self.args.helios != "handwritten" and (
                self.planner or self.args.helios == "plugin"
            )
            source = ""
            if use_plugin:
                alembic(project, url, "revision", "--autogenerate", "-m", "bench")
                revisions = [
                    p
                    for p in (project / "migrations" / "versions").glob("*.py")
                    if not p.name.startswith("0001_")
                ]
                source = revisions[0].read_text() if revisions else ""
                if not self.planner and not is_helios_plan(source):
                    # No planner in this installation: the plugin only reports locks.
                    use_plugin = False
                    for p in revisions:
                        p.unlink()
            if use_plugin:
                up = self.under_load(
                    url,
                    "helios",
                    "autogenerated plan",
                    lambda: alembic_logged(project, url, "upgrade", "head"),
                )
                if self.args.no_downgrade:
                    return up, None
                down = self.under_load(
                    url,
                    "helios",
                    "autogenerated downgrade",
                    lambda: alembic_logged(
                        project, url, "downgrade", "-1", env={"HELIOS_ALLOW_DATA_LOSS": "1"}
                    ),
                )
                return up, down
            safe = [c for c in LOCK_SAFE_V2 if c.key in keys]
            return self.under_load(
                url,
                "helios",
                "hand-written lock-safe steps",
                lambda: run_lock_safe(url, safe, batch_pause_s=0.05),
            ), None
        finally:
            pgserver.drop_database(self.server, name)
            shutil.rmtree(project, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders (default 1,000,000)")
    parser.add_argument(
        "--items", type=int, default=100_000, help="order items (default 100,000; not migrated)"
    )
    parser.add_argument(
        "--changes",
        default=",".join(SHORT.values()),
        help=f"comma-separated subset of: {', '.join(SHORT.values())} (default: all)",
    )
    parser.add_argument("--no-all", action="store_true", help="skip the all-changes-together row")
    parser.add_argument(
        "--no-downgrade", action="store_true", help="measure the upgrades only, not the way back"
    )
    parser.add_argument(
        "--helios",
        choices=("auto", "plugin", "handwritten"),
        default="auto",
        help="helios side: the plugin's autogenerated revisions (auto: when the plugin writes "
        "lock-safe plans, else the hand-written lock-safe steps)",
    )
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument(
        "--baseline",
        type=float,
        default=10.0,
        help="seconds of the same load with no migration first: the longest write stall the "
        "machine itself causes (its noise floor; default 10, 0: skip)",
    )
    parser.add_argument("--server", choices=("embedded", "debian"), default="embedded")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    by_short = {v: k for k, v in SHORT.items()}
    wanted = [c.strip() for c in args.changes.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in by_short]
    if unknown:
        parser.error(f"unknown change(s): {', '.join(unknown)}")
    keys = [by_short[c] for c in wanted]
    titles = {c.key: c.title for c in LOCK_SAFE_V2}

    base = Path(tempfile.mkdtemp(prefix="helios-bench-"))
    try:
        try:
            if args.server == "embedded":
                server = pgserver.start_embedded(base / "pg")
            else:
                server = pgserver.start_debian(base / "pg")
        except pgserver.ServerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            return _run(args, base, server, keys, titles)
        except DemoError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    base: Path,
    server: pgserver.RunningServer,
    keys: list[str],
    titles: dict[str, str],
) -> int:
    print(
        f"PostgreSQL {server.version} ({args.server}); {args.rows:,} orders; "
        f"{args.writers} writers + 1 reader on orders",
        flush=True,
    )
    bench = Bench(args, base, server)
    bench.build_template()
    template_url = server.database_url(bench.template)
    v1_models = (base / "template-project" / "models.py").read_text()
    v2 = load_models(base / "template-project" / "models_v2.py")
    operations = plain_ops(template_url, v2.metadata)
    by_key: dict[str, list[object]] = {}
    for op in operations:
        by_key.setdefault(op_key(op), []).append(op)
    with psycopg.connect(server.url, autocommit=True) as conn:  # nobody may use it while cloned
        conn.execute(f'ALTER DATABASE "{bench.template}" WITH ALLOW_CONNECTIONS false')

    if args.helios != "handwritten":
        found = bench.probe_planner()
        print(
            "helios side: the plugin's autogenerated plans"
            if found or args.helios == "plugin"
            else "helios side: hand-written lock-safe steps (the plugin writes plain operations)",
            flush=True,
        )
    floor: Run | None = None
    if args.baseline > 0:
        name, url = bench.clone()
        try:
            floor = bench.under_load(url, "none", "no migration", lambda: time.sleep(args.baseline))
        finally:
            pgserver.drop_database(server, name)
        print(
            f"no migration, {args.baseline:g} s of the same load: longest write stall "
            f"{floor.write_stall_s:.3f} s (what the machine itself causes; a stall near it is noise)",
            flush=True,
        )
    rows: list[Row] = []
    plans = [(k, [k], titles.get(k, k)) for k in keys]
    if not args.no_all and len(keys) > 1:
        plans.append((ALL, keys, "every change above in one revision"))
    for name, change_keys, title in plans:
        ops = [op for k in change_keys for op in by_key.get(k, [])]
        if not ops:
            print(f"{name}: plain autogenerate emits nothing for it; skipped", flush=True)
            continue
        plain_sql = render_plain_sql(ops)
        down_sql = None if args.no_downgrade else render_plain_sql([op.reverse() for op in reversed(ops)])  # type: ignore[attr-defined]
        short = SHORT.get(name, name)
        print(f"-- {short}: plain ...", end="", flush=True)
        plain_run, plain_down = bench.plain(change_keys, plain_sql, down_sql)
        print(f" {plain_run.write_stall_s:.3f} s; helios ...", end="", flush=True)
        helios_run, helios_down = bench.helios(change_keys, v1_models)
        print(f" {helios_run.write_stall_s:.3f} s ({helios_run.how})", flush=True)
        rows.append(Row(short, title, plain_run, helios_run, plain_down, helios_down))

    print()
    print(f"Longest write stall, PostgreSQL {server.version}, {args.rows:,} rows in orders")
    header = (
        f"{'change':<28} {'plain stall':>12} {'helios stall':>13} {'ratio':>9} "
        f"{'plain time':>11} {'helios time':>12}  helios side"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.change:<28} {row.plain.write_stall_s:>10.3f} s {row.helios.write_stall_s:>11.3f} s "
            f"{row.ratio:>8.1f}x {row.plain.duration_s:>9.2f} s {row.helios.duration_s:>10.2f} s  "
            f"{row.helios.how}"
        )
        if row.helios.during:
            print(f"{'':<28} helios' longest stall ended during: {row.helios.during}")
    singles = [r for r in rows if r.change != ALL]
    if singles:
        worst_plain = max(r.plain.write_stall_s for r in singles)
        worst_helios = max(r.helios.write_stall_s for r in singles)
        print("-" * len(header))
        print(
            f"{'worst single change':<28} {worst_plain:>10.3f} s {worst_helios:>11.3f} s "
            f"{worst_plain / max(worst_helios, 1e-4):>8.1f}x"
        )
    downs = [r for r in rows if r.plain_down is not None and r.helios_down is not None]
    if downs:
        print()
        print(f"Longest write stall going back down (downgrade), PostgreSQL {server.version}")
        print(header)
        print("-" * len(header))
        for row in downs:
            assert row.plain_down is not None and row.helios_down is not None
            print(
                f"{row.change:<28} {row.plain_down.write_stall_s:>10.3f} s "
                f"{row.helios_down.write_stall_s:>11.3f} s {row.ratio_down or 0:>8.1f}x "
                f"{row.plain_down.duration_s:>9.2f} s {row.helios_down.duration_s:>10.2f} s  "
                f"{row.helios_down.how}"
            )
            if row.helios_down.during:
                print(f"{'':<28} helios' longest stall ended during: {row.helios_down.during}")
    runs = [(r.change, m) for r in rows for m in (r.plain, r.helios, r.plain_down, r.helios_down) if m]
    errors = [(change, f"{m.mode} {m.how}", m.errors) for change, m in runs if m.errors]
    if errors:
        print("operations of the load that failed while a migration ran (change, side, count):")
        for change, mode, count in errors:
            print(f"  {change} {mode}: {count}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "server": str(server.version),
                    "rows": args.rows,
                    "writers": args.writers,
                    "no_migration": asdict(floor) if floor else None,
                    "results": [
                        {
                            "change": r.change,
                            "title": r.title,
                            "plain": asdict(r.plain),
                            "helios": asdict(r.helios),
                            "ratio": round(r.ratio, 1),
                            "plain_downgrade": asdict(r.plain_down) if r.plain_down else None,
                            "helios_downgrade": asdict(r.helios_down) if r.helios_down else None,
                        }
                        for r in rows
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
