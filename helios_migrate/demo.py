"""``helios-migrate demo``: the shop example (``examples/shop``) on an embedded PostgreSQL.

1. start a throwaway PostgreSQL and create the shop at version 1 (``alembic upgrade head``), with
   rows (200,000 orders by default);
2. explain, with facts read from that live database, what the SQL plain Alembic would emit for the
   version 2 models locks;
3. switch the models to version 2 and run ``alembic revision --autogenerate`` with the helios plugin
   enabled, and show the revision it writes;
4. run ``alembic upgrade head`` while a concurrent writer and reader work on ``orders``
   (:class:`helios_migrate.workload.Workload`) and print the longest write and read stall;
   then (4b) make a "hotfix" index by hand, show it with ``helios-migrate diff head URL``, write
   and apply the revision that converges the database, and diff again: no drift;
5. ``alembic downgrade -1``.

The pieces are reusable: the benchmark (``bench/write_stall.py``) seeds the same shop, compares the
same changes, and runs :data:`LOCK_SAFE_V2` -- the lock-safe form of the version 2 changes written
by hand, step by step -- with :func:`run_lock_safe`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import ops
from psycopg import sql
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from sqlalchemy import create_engine

from .alembic_ops import render_sql
from .locks_command import OutputFormat, run_locks
from .pgserver import ServerStartError, start_embedded
from .workload import Workload, WorkloadError

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "shop"
"""The example application (a clone of the repository has it; an installed wheel does not)."""

ALEMBIC_TIMEOUT_S = 600
PLAIN_PLUGINS = ["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"]
"""Alembic's own comparators (named CHECK constraints included): what plain autogenerate emits."""


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Step|Expired|Failure)\b.*:")


class DemoError(Exception):
    """An expected failure: reported as one clear message, without a traceback."""


# --------------------------------------------------------------------------------------------------
# The shop: project, rows


def find_example() -> Path:
    if not (EXAMPLE_DIR / "alembic.ini").is_file():
        raise DemoError(
            f"the example project is not at {EXAMPLE_DIR}: the demo runs from a clone of the "
            "helios-migrate repository (pip install -e . there)"
        )
    return EXAMPLE_DIR


def copy_project(dest: Path) -> Path:
    """A private copy of the shop project in ``dest`` (its ``models.py`` at version 1)."""
    shutil.copytree(
        find_example(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv")
    )
    return dest


def switch_to_v2(project: Path) -> None:
    """Change the models: ``models_v2.py`` replaces ``models.py``."""
    shutil.copyfile(project / "models_v2.py", project / "models.py")
    shutil.rmtree(project / "__pycache__", ignore_errors=True)


def seed_sql(
    orders: int, customers: int = 20_000, products: int = 1_000, items: int | None = None
) -> str:
    """Rows for the shop at version 1: ``orders`` orders, ``items`` order items (default: one per
    order); quick (set-based SQL)."""
    items = orders if items is None else min(items, orders)
    return f"""
INSERT INTO customers (email, name)
    SELECT 'customer' || g || '@example.com', 'Customer ' || g FROM generate_series(1, {customers}) g;
INSERT INTO products (sku, name, price)
    SELECT 'SKU-' || g, 'Product ' || g, 1 + (g % 200) + 0.99 FROM generate_series(1, {products}) g;
INSERT INTO orders (customer_id, status, total, item_count, placed_at, referred_by_id, note)
    SELECT 1 + g % {customers},
           (ARRAY['new', 'paid', 'shipped', 'cancelled']::order_status[])[1 + g % 4],
           (g % 500) + 0.99,
           1 + g % 5,
           now() - (g % 1000) * interval '1 hour',
           CASE WHEN g % 10 = 0 THEN 1 + (g * 7) % {customers} END,
           CASE WHEN g % 3 = 0 THEN 'leave at the door' END
    FROM generate_series(1, {orders}) g;
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT g, 1 + g % {products}, 1 + g % 5, (g % 200) + 0.99 FROM generate_series(1, {items}) g;
"""


def seed(url: str, orders: int, *, items: int | None = None) -> None:
    """Fill the shop (at version 1) with rows, then VACUUM ANALYZE."""
    with psycopg.connect(url) as conn:
        conn.execute(seed_sql(orders, items=items))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------------------------------
# Alembic, as a user runs it


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if "://" in url else url


HOTFIX_INDEX = "CREATE INDEX CONCURRENTLY orders_hotfix_idx ON orders (status, placed_at)"


def helios(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``helios-migrate ARGS`` in ``project`` (the shop's env.py reads SHOP_DATABASE_URL: left
    unset here, so a command that builds the revisions uses the scratch database it names)."""
    env = {k: v for k, v in os.environ.items() if k != "SHOP_DATABASE_URL"}
    env["PYTHONPATH"] = str(project)
    try:
        return subprocess.run(
            [sys.executable, "-m", "helios_migrate", *args],
            cwd=project, env=env, capture_output=True, text=True, timeout=ALEMBIC_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"helios-migrate {args[0]} did not finish within {ALEMBIC_TIMEOUT_S:g} s") from exc


def helios_diff(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``helios-migrate diff head URL ...`` in ``project``, the revisions built in a throwaway
    database on the same server."""
    return helios(project, "diff", "head", url, "--scratch-url", url, *args)


def _output(result: subprocess.CompletedProcess[str], command: str, expected: tuple[int, ...],
            *, lines: int = 40) -> str:
    """A command's output, at most ``lines`` lines; an exit code not in ``expected`` stops the demo."""
    if result.returncode not in expected:
        tail = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise DemoError(f"{command} exited {result.returncode}: {tail[-1]}")
    shown = result.stdout.rstrip().splitlines()
    more = len(shown) - lines
    return "\n".join(shown[:lines] + ([f"... ({more} more lines)"] if more > 0 else []))


def show_schema_tools(console: Console, project: Path, url: str) -> None:
    """The shop's query mix for a few seconds, then what ``indexes`` advises for it, what
    ``review`` finds in the live schema, and the documentation ``docs`` writes."""
    queries = project / "queries.sql"
    console.print("$ python workload.py --database-url $DATABASE_URL --rounds 20 --seconds 6 "
                  "--write-queries queries.sql", style="cyan")
    try:
        ran = subprocess.run(
            [sys.executable, str(project / "workload.py"), "--database-url", url, "--rounds", "20",
             "--seconds", "6", "--write-queries", str(queries)],
            cwd=project, capture_output=True, text=True, timeout=ALEMBIC_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"workload.py did not finish within {ALEMBIC_TIMEOUT_S:g} s") from exc
    console.print(_output(ran, "workload.py", (0,)).splitlines()[0], markup=False)
    console.print("$ helios-migrate indexes --database-url $DATABASE_URL --queries queries.sql", style="cyan")
    advice = helios(project, "indexes", "--database-url", url, "--queries", str(queries))
    console.print(_output(advice, "helios-migrate indexes", (0,), lines=80), markup=False)
    console.print("$ helios-migrate review --database-url $DATABASE_URL --show-info", style="cyan")
    review = helios(project, "review", "--database-url", url, "--show-info")
    console.print(_output(review, "helios-migrate review", (0, 1), lines=30), markup=False)
    console.print("$ helios-migrate docs $DATABASE_URL --out schema-docs", style="cyan")
    out = project / "schema-docs"
    docs = helios(project, "docs", url, "--out", str(out))
    _output(docs, "helios-migrate docs", (0,))
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    console.print(f"wrote {out}: {', '.join(pages)}", markup=False)
    readme = (out / "README.md").read_text(encoding="utf-8").splitlines()
    if "```mermaid" in readme:
        start = readme.index("```mermaid")
        diagram = readme[start:readme.index("```", start + 1) + 1]
        console.print("\n".join(diagram[:14] + (["  ..."] if len(diagram) > 14 else [])), markup=False)


def _diff_output(result: subprocess.CompletedProcess[str], expected: int) -> str:
    shown = _output(result, "helios-migrate diff", (expected,), lines=200)
    # the SOURCE/TARGET lines name throwaway databases; the differences are what matters here
    return "\n".join(ln for ln in shown.splitlines() if not ln.startswith(("SOURCE:", "TARGET:"))).strip()


def show_drift(console: Console, project: Path, url: str) -> None:
    """A hotfix index made by hand on the live database; ``diff head URL`` shows it (exit 1),
    ``--write`` writes the revision that converges the database, ``alembic upgrade head`` applies
    it, and ``diff`` again finds nothing (exit 0).  The converging revision is then taken out of
    the history again (the database matches version 2 exactly), so step 5 downgrades version 2."""
    console.print(f"$ psql -c '{HOTFIX_INDEX}'", style="cyan")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(HOTFIX_INDEX)
    console.print("$ helios-migrate diff head $DATABASE_URL", style="cyan")
    console.print(_diff_output(helios_diff(project, url), 1), markup=False)
    console.print('$ helios-migrate diff head $DATABASE_URL --write -m "converge hotfix drift"', style="cyan")
    wrote = helios_diff(project, url, "--write", "-m", "converge hotfix drift")
    _diff_output(wrote, 1)
    found = re.search(r"Wrote (\S+) \(revision (\w+), down_revision (\w+)\)", wrote.stderr)
    if found is None:
        raise DemoError(f"helios-migrate diff --write wrote no revision: {wrote.stderr.strip()[-300:]}")
    path, previous = Path(found.group(1)), found.group(3)
    statements = re.findall(r"'(DROP INDEX[^']*)'", path.read_text().split("def downgrade")[0])
    console.print(f"wrote {path.name}: {'; '.join(statements) or '(see the file)'}", markup=False)
    console.print("$ alembic upgrade head", style="cyan")
    alembic(project, url, "upgrade", "head")
    console.print("$ helios-migrate diff head $DATABASE_URL", style="cyan")
    console.print(_diff_output(helios_diff(project, url), 0), markup=False)
    path.unlink()
    alembic(project, url, "stamp", "--purge", previous)
    console.print(
        f"[dim](the converging revision is taken out again and the database stamped {previous}, which it "
        "now matches, so step 5 downgrades version 2)[/dim]"
    )


def alembic(
    project: Path,
    url: str,
    *args: str,
    timeout: float = ALEMBIC_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``alembic`` command in ``project`` against ``url``; raise DemoError on failure
    (its message: the command's last error lines, without the traceback)."""
    env = {**os.environ, "SHOP_DATABASE_URL": url, "PYTHONPATH": str(project), **(env or {})}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"alembic {' '.join(args)} did not finish within {timeout:g} s") from exc
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [ln for ln in lines if _EXCEPTION_LINE.match(ln)]
        tail = (errors or lines or ["(no output)"])[-1]
        raise DemoError(f"alembic {' '.join(args)} failed (exit {result.returncode}): {tail}")
    return result


def load_models(path: Path) -> types.ModuleType:
    """Import a models file under a private name (so v1 and v2 can be loaded side by side)."""
    name = f"_helios_shop_models_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DemoError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def plain_ops(url: str, metadata: Any) -> list[Any]:
    """The operations plain ``alembic revision --autogenerate`` emits to bring ``url`` to
    ``metadata`` (Alembic's own comparators, no helios plugin), flattened, in order."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                connection=conn,
                opts={"target_metadata": metadata, "autogenerate_plugins": PLAIN_PLUGINS},
            )
            script = produce_migrations(context, metadata)
    finally:
        engine.dispose()

    def flatten(items: Sequence[Any]) -> Iterator[Any]:
        for op in items:
            if isinstance(op, ops.OpContainer):
                yield from flatten(op.ops)
            else:
                yield op

    upgrade = script.upgrade_ops
    return list(flatten(upgrade.ops)) if upgrade is not None else []


def render_plain_sql(operations: Sequence[Any]) -> str:
    """The SQL Alembic emits for ``operations`` on PostgreSQL (offline rendering)."""
    return "".join(render_sql(op).strip() + "\n" for op in operations)


def op_key(op: Any) -> str:
    """Which change an operation belongs to: ``column:<name>`` or ``constraint:<name>``."""
    if isinstance(op, ops.AddColumnOp):
        return f"column:{op.column.name}"
    if isinstance(op, ops.AlterColumnOp):
        return f"column:{op.column_name}"
    if isinstance(op, ops.CreateIndexOp):
        cols = [getattr(c, "name", str(c)) for c in op.columns]
        return f"column:{cols[0]}" if len(cols) == 1 else f"index:{op.index_name}"
    if isinstance(op, ops.CreateForeignKeyOp) and len(op.local_cols) == 1:
        return f"column:{op.local_cols[0]}"
    return f"constraint:{getattr(op, 'constraint_name', None) or type(op).__name__}"


def is_helios_plan(revision_source: str) -> bool:
    """Whether an autogenerated revision holds a helios plan (not just the plain operations)."""
    markers = ("helios_migrate.runtime", "autocommit_block", "NOT VALID", "postgresql_concurrently")
    return any(marker in revision_source for marker in markers)


# --------------------------------------------------------------------------------------------------
# The lock-safe form of the version 2 changes, written by hand


@dataclass(frozen=True)
class Step:
    """One step, run in its own short transaction with a lock timeout (retried when it expires).

    A ``backfill`` step is an UPDATE with ``%(lo)s``/``%(hi)s`` placeholders, run once per batch of
    primary keys.
    """

    phase: str
    sql: str
    backfill: bool = False


@dataclass(frozen=True)
class SafeChange:
    key: str
    """The :func:`op_key` of the operations this replaces."""
    title: str
    steps: tuple[Step, ...]


LOCK_SAFE_V2: tuple[SafeChange, ...] = (
    SafeChange(
        "column:currency",
        "add NOT NULL column with a default (orders.currency)",
        (
            Step("expand", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS currency varchar(3)"),
            Step("expand", "ALTER TABLE orders ALTER COLUMN currency SET DEFAULT 'EUR'"),
            Step(
                "backfill",
                "UPDATE orders SET currency = 'EUR' "
                "WHERE id >= %(lo)s AND id < %(hi)s AND currency IS NULL",
                backfill=True,
            ),
            Step(
                "contract",
                "ALTER TABLE orders ADD CONSTRAINT orders_currency_not_null "
                "CHECK (currency IS NOT NULL) NOT VALID",
            ),
            Step("contract", "ALTER TABLE orders VALIDATE CONSTRAINT orders_currency_not_null"),
            Step("contract", "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL"),
            Step("contract", "ALTER TABLE orders DROP CONSTRAINT orders_currency_not_null"),
        ),
    ),
    SafeChange(
        "column:public_id",
        "add column with a volatile default (orders.public_id)",
        (
            Step("expand", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS public_id uuid"),
            Step(
                "expand", "ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid()"
            ),
            Step(
                "backfill",
                "UPDATE orders SET public_id = gen_random_uuid() "
                "WHERE id >= %(lo)s AND id < %(hi)s AND public_id IS NULL",
                backfill=True,
            ),
        ),
    ),
    SafeChange(
        "column:referred_by_id",
        "add foreign key + index (orders.referred_by_id)",
        (
            Step(
                "expand",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_referred_by_id "
                "ON orders (referred_by_id)",
            ),
            Step(
                "expand",
                "ALTER TABLE orders ADD CONSTRAINT orders_referred_by_id_fkey FOREIGN KEY "
                "(referred_by_id) REFERENCES customers (id) NOT VALID",
            ),
            Step("expand", "ALTER TABLE orders VALIDATE CONSTRAINT orders_referred_by_id_fkey"),
        ),
    ),
    SafeChange(
        "column:item_count",
        "change type integer -> bigint (orders.item_count)",
        (
            Step("expand", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS item_count_new bigint"),
            Step(
                "expand",
                "CREATE OR REPLACE FUNCTION orders_item_count_sync() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN NEW.item_count_new := NEW.item_count; "
                "RETURN NEW; END $$",
            ),
            Step(
                "expand",
                "CREATE OR REPLACE TRIGGER orders_item_count_sync BEFORE INSERT OR UPDATE ON orders "
                "FOR EACH ROW EXECUTE FUNCTION orders_item_count_sync()",
            ),
            Step(
                "backfill",
                "UPDATE orders SET item_count_new = item_count "
                "WHERE id >= %(lo)s AND id < %(hi)s AND item_count_new IS DISTINCT FROM item_count",
                backfill=True,
            ),
            Step(
                "contract",
                "ALTER TABLE orders ADD CONSTRAINT orders_item_count_new_not_null "
                "CHECK (item_count_new IS NOT NULL) NOT VALID",
            ),
            Step(
                "contract", "ALTER TABLE orders VALIDATE CONSTRAINT orders_item_count_new_not_null"
            ),
            Step(
                "contract",
                "ALTER TABLE orders ALTER COLUMN item_count_new SET NOT NULL; "
                "DROP TRIGGER orders_item_count_sync ON orders; "
                "ALTER TABLE orders DROP COLUMN item_count; "
                "ALTER TABLE orders RENAME COLUMN item_count_new TO item_count; "
                "ALTER TABLE orders ALTER COLUMN item_count SET DEFAULT 0; "
                "ALTER TABLE orders DROP CONSTRAINT orders_item_count_new_not_null",
            ),
            Step("contract", "DROP FUNCTION orders_item_count_sync()"),
        ),
    ),
    SafeChange(
        "column:total",
        "change type numeric(10,2) -> numeric(12,2) in place (orders.total)",
        (Step("expand", "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2)"),),
    ),
    SafeChange(
        "constraint:ck_orders_total_nonnegative",
        "add CHECK (orders.total >= 0)",
        (
            Step(
                "expand",
                "ALTER TABLE orders ADD CONSTRAINT ck_orders_total_nonnegative "
                "CHECK (total >= 0) NOT VALID",
            ),
            Step("expand", "ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_total_nonnegative"),
        ),
    ),
)


def lock_safe_sql(changes: Sequence[SafeChange] = LOCK_SAFE_V2) -> str:
    """The hand-written lock-safe steps as a script (one batch shown for each backfill)."""
    lines: list[str] = []
    for change in changes:
        lines.append(f"-- {change.title}")
        for step in change.steps:
            text = step.sql % {"lo": 1, "hi": 10_001} if step.backfill else step.sql
            for statement in text.split("; "):
                lines.append(statement.rstrip(";") + ";")
            if step.backfill:
                lines.append("-- ... and so on, one short transaction per batch of 10,000 ids")
    return "\n".join(lines) + "\n"


def run_lock_safe(
    url: str,
    changes: Sequence[SafeChange],
    *,
    table: str = "orders",
    key: str = "id",
    batch_size: int = 10_000,
    batch_pause_s: float = 0.0,
    lock_timeout_ms: int = 2_000,
    retries: int = 10,
    on_step: Callable[[SafeChange, Step, float, float], None] | None = None,
) -> None:
    """Run the steps of ``changes``, each in its own short transaction with ``lock_timeout``.

    A step whose lock wait times out is retried (``retries`` times, with backoff). ``on_step`` is
    called with the monotonic start and end of every step (for per-step stall attribution).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
        for change in changes:
            for step in change.steps:
                started = time.monotonic()
                if step.backfill:
                    row = conn.execute(
                        sql.SQL("SELECT min({k}), max({k}) FROM {t}").format(
                            k=sql.Identifier(key), t=sql.Identifier(table)
                        )
                    ).fetchone()
                    lo, hi = (row[0], row[1]) if row is not None else (None, None)
                    if lo is not None and hi is not None:
                        for start in range(int(lo), int(hi) + 1, batch_size):
                            params = {"lo": start, "hi": start + batch_size}
                            _with_retries(conn, step.sql, params, retries)
                            if batch_pause_s:
                                time.sleep(batch_pause_s)
                else:
                    _with_retries(conn, step.sql, None, retries)
                if on_step is not None:
                    on_step(change, step, started, time.monotonic())


def _with_retries(conn: Any, statement: str, params: dict[str, int] | None, retries: int) -> None:
    for attempt in range(retries + 1):
        try:
            conn.execute(statement, params)
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == retries:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt))


# --------------------------------------------------------------------------------------------------
# The demo


@contextlib.contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    console.rule(f"[bold]{title}")
    started = time.monotonic()
    yield
    console.print(f"[dim]({time.monotonic() - started:.1f} s)[/dim]")


V1_INSERT = (
    "INSERT INTO orders (customer_id, total, item_count, note) "
    "SELECT customer_id, total, item_count, 'written by version 1' FROM orders "
    "WHERE id = (SELECT min(id) FROM orders)"
)
"""An INSERT of version 1 of the application: it knows nothing of version 2's columns."""
V1_UPDATE = "UPDATE orders SET item_count = item_count, note = note WHERE id = %s"


def run_demo(workdir: str | None, *, orders: int = 200_000) -> int:
    """Run the demo; returns an exit code (0, or 1 with a message on an expected failure)."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        find_example()
    except DemoError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return 2
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="helios-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        return _run(console, base, orders)
    except DemoError as exc:
        console.print(f"[red]error[/red]: {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    finally:
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        console.print(f"[dim]demo finished in {time.monotonic() - began:.0f} s[/dim]")


def _run(console: Console, base: Path, orders: int) -> int:
    console.print(
        Panel.fit(
            "helios-migrate demo: a model change, autogenerated, upgraded under load", style="bold"
        )
    )
    console.print(f"Starting an embedded PostgreSQL in {base} ...")
    try:
        server = start_embedded(base / "pgdata")
    except ServerStartError as exc:
        raise DemoError(str(exc)) from exc
    try:
        url = server.url
        project = copy_project(base / "shop")
        with _step(console, f"1. The shop at version 1, with {orders:,} orders"):
            console.print(f"PostgreSQL {server.version}; project: {project}")
            console.print("$ alembic upgrade head", style="cyan")
            alembic(project, url, "upgrade", "head")
            seed(url, orders)
            with psycopg.connect(url, autocommit=True) as conn:
                size = conn.execute("SELECT pg_size_pretty(pg_table_size('orders'))").fetchone()
            console.print(
                f"customers 20,000 · products 1,000 · orders {orders:,} "
                f"({size[0] if size else '?'}) · order_items {orders:,}"
            )

        v2 = load_models(project / "models_v2.py")
        operations = plain_ops(url, v2.metadata)
        plain_sql = render_plain_sql(operations)
        with _step(console, "2. Version 2 of the models, as plain Alembic would migrate it"):
            console.print(
                "models_v2.py adds orders.currency (NOT NULL, default 'EUR'), orders.public_id "
                "(default gen_random_uuid()), a foreign key + index on orders.referred_by_id, "
                "CHECK (total >= 0), and changes item_count to bigint and total to numeric(12,2)."
            )
            console.print("The SQL plain `alembic revision --autogenerate` leads to:")
            console.print(plain_sql, style="cyan", markup=False)
            console.print("What it locks, on this server and these tables:", style="bold")
            run_locks(
                plain_sql,
                pg_version=None,
                database_url=url,
                output_format=OutputFormat.TEXT,
                console=console,
            )

        with _step(console, "3. $ cp models_v2.py models.py; alembic revision --autogenerate"):
            switch_to_v2(project)
            result = alembic(project, url, "revision", "--autogenerate", "-m", "shop v2")
            for line in (result.stderr + result.stdout).splitlines():
                if "helios" in line and "setting up" not in line:
                    console.print(line, markup=False, style="yellow")
            revisions = sorted(
                p
                for p in (project / "migrations" / "versions").glob("*.py")
                if not p.name.startswith("0001_")
            )
            if not revisions:
                raise DemoError("alembic revision --autogenerate wrote no revision file")
            source = revisions[-1].read_text()
            console.print(f"{revisions[-1].relative_to(project)}:", style="bold")
            console.print(Syntax(source, "python", theme="ansi_dark", word_wrap=False))
            planned = is_helios_plan(source)
            if not planned:
                console.print(
                    "This revision holds the plain operations: the plugin reported the locks "
                    "above but did not rewrite them into a lock-safe plan. The lock-safe form "
                    "of the same changes, written by hand, for comparison:",
                    style="bold",
                )
                safe_sql = lock_safe_sql()
                console.print(safe_sql, style="cyan", markup=False)
                run_locks(
                    safe_sql,
                    pg_version=None,
                    database_url=url,
                    output_format=OutputFormat.TEXT,
                    console=console,
                )

        with _step(console, "4. $ alembic upgrade head, while the application writes"):
            console.print("2 writers (INSERT + UPDATE by id) and 1 reader (SELECT by id) on orders")
            try:
                with Workload(url, "orders", writers=2, readers=1, max_duration_s=300) as load:
                    time.sleep(0.5)
                    t0 = time.monotonic()
                    alembic(project, url, "upgrade", "head")
                    t1 = time.monotonic()
                    time.sleep(0.5)
            except WorkloadError as exc:
                raise DemoError(str(exc)) from exc
            during = load.stalls_between(t0, t1)
            console.print(f"upgrade took {t1 - t0:.2f} s; {load.describe()}")
            console.print(
                f"[bold]longest write stall during the upgrade: {during.write_s:.3f} s[/bold] "
                f"(longest read stall {during.read_s:.3f} s)"
            )
            if load.errors:
                console.print(f"errors seen by the application: {load.error_summary()}")
            kind = "the helios plan" if planned else "the plain revision"
            console.print(
                f"While {kind} ran, each write waited at most {during.write_s:.2f} s. "
                "Compare plain and lock-safe on 1,000,000 rows: python bench/write_stall.py"
            )

        with _step(console, "4b. Drift: a hand-made hotfix index, found and converged by helios-migrate diff"):
            show_drift(console, project, url)

        with _step(console, "5. $ alembic downgrade -1, while version 1 of the application writes"):
            console.print(
                "2 writers running version 1's statements (no currency, no public_id) and 1 reader"
            )
            try:
                with Workload(
                    url, "orders", writers=2, readers=1, max_duration_s=300,
                    insert_sql=V1_INSERT, update_sql=V1_UPDATE,
                ) as load:
                    time.sleep(0.5)
                    t0 = time.monotonic()
                    try:
                        alembic(project, url, "downgrade", "-1")
                    except DemoError as exc:
                        if "HELIOS_ALLOW_DATA_LOSS" not in str(exc):
                            raise
                        console.print(f"downgrade refused: {exc}", markup=False, style="yellow")
                        console.print(
                            "$ HELIOS_ALLOW_DATA_LOSS=1 alembic downgrade -1", style="cyan"
                        )
                        alembic(
                            project, url, "downgrade", "-1", env={"HELIOS_ALLOW_DATA_LOSS": "1"}
                        )
                    t1 = time.monotonic()
                    time.sleep(0.5)
            except WorkloadError as exc:
                raise DemoError(str(exc)) from exc
            back = load.stalls_between(t0, t1)
            console.print(f"downgrade took {t1 - t0:.2f} s; {load.describe()}")
            console.print(
                f"[bold]longest write stall during the downgrade: {back.write_s:.3f} s[/bold] "
                f"(longest read stall {back.read_s:.3f} s)"
            )
            console.print(f"errors seen by the application: {load.error_summary() if load.errors else 0}")
            console.print(
                f"[bold]upgrade and downgrade: longest write stall {during.write_s:.3f} s up, "
                f"{back.write_s:.3f} s down[/bold]"
            )
            current = alembic(project, url, "current")
            console.print(f"alembic current: {(current.stdout.strip() or '-').splitlines()[-1]}")

        with _step(console, "6. The schema as it is used: indexes, review and docs on the live database"):
            show_schema_tools(console, project, url)
    except psycopg.Error as exc:
        raise DemoError(f"PostgreSQL: {str(exc).strip()}") from exc
    finally:
        server.stop()
    return 0


def demo_command(
    workdir: Annotated[
        str | None,
        typer.Option("--workdir", help="Where to keep the embedded PostgreSQL data (default: a temporary directory)."),
    ] = None,
) -> None:
    """Start an embedded PostgreSQL, create a sample schema with rows, and explain a migration's locks."""
    raise typer.Exit(run_demo(workdir))
