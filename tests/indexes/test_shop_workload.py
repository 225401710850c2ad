"""``examples/shop/workload.py`` on the shop's database (PostgreSQL 15 and 18): a bounded run, its
statements written for ``indexes --queries``, and the advice the README shows for the shop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helios_migrate import demo

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "shop" / "workload.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, check=False)


def test_shop_workload_feeds_index_advice(fresh_db: str, tmp_path: Path) -> None:
    empty = _run(str(SCRIPT), "--database-url", fresh_db)
    assert empty.returncode == 2 and "not the shop's database" in empty.stderr and "Traceback" not in empty.stderr

    project = demo.copy_project(tmp_path / "shop")
    demo.alembic(project, fresh_db, "upgrade", "head")
    demo.seed(fresh_db, 30_000)
    queries = tmp_path / "queries.sql"
    done = _run(str(SCRIPT), "--database-url", fresh_db, "--rounds", "3", "--seconds", "60",
                "--write-queries", str(queries))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("213 statements")  # 3 rounds of 71: bounded by --rounds
    assert queries.read_text().count("-- calls=") == 10

    out = _run("-m", "helios_migrate", "indexes", "--database-url", fresh_db, "--queries", str(queries),
               "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    got = {(s["table"], tuple(s["columns"]), s["where"]) for s in doc["suggestions"]}
    assert got == {
        ("public.orders", ("status", "placed_at"), None),  # 'new' is a quarter of the orders: no partial
        ("public.orders", ("referred_by_id",), None),
        ("public.customers", ("lower(email)",), None),
        ("public.orders", ("placed_at",), "referred_by_id IS NOT NULL"),
    }, got
    # the customer's latest orders (~2 each), an order paid by id: served by the indexes there
    served = {s["index"] for s in doc["served"]}
    assert {"ix_orders_customer_id", "orders_pkey"} <= served, served
