"""A bounded, realistic query mix for the shop, so `helios-migrate review` and `indexes` have a
workload to read.

    python examples/shop/workload.py --database-url postgresql://postgres@localhost/shop
    python examples/shop/workload.py --database-url $URL --rounds 200 --seconds 30
    python examples/shop/workload.py --database-url $URL --write-queries queries.sql

It talks only to the database it is given.  Each round runs every statement of ``MIX`` its weight
in calls (the storefront's lookups, the back office's lists and reports, a few writes), with
parameters drawn from a fixed seed; it stops after ``--rounds`` rounds or ``--seconds`` seconds,
whichever comes first.  The writes change real rows (new orders, status updates), as the
application would; run it on a copy you can throw away (the demo's database, for instance).

Where ``pg_stat_statements`` is loaded, ``helios-migrate indexes --database-url $URL`` reads the
workload from it.  Where it is not (the demo's embedded server starts without it), ``--write-queries
FILE`` writes each statement with the calls and the mean time measured here, in the form
``helios-migrate indexes --queries FILE`` reads (a ``-- calls=N mean_ms=M`` line before it).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


@dataclass(frozen=True)
class Statement:
    what: str
    sql: str
    params: Callable[[random.Random, dict[str, int]], tuple[Any, ...]]
    weight: int
    """Calls per round."""


MIX: tuple[Statement, ...] = (
    # the storefront
    Statement("a customer's latest orders",
              "SELECT id, status, total, placed_at FROM orders WHERE customer_id = %s "
              "ORDER BY placed_at DESC LIMIT 20",
              lambda r, n: (r.randint(1, n["customers"]),), 20),
    Statement("sign-in by e-mail, whatever its case",
              "SELECT id, name FROM customers WHERE lower(email) = lower(%s)",
              lambda r, n: (f"Customer{r.randint(1, n['customers'])}@Example.com",), 10),
    Statement("a product page",
              "SELECT id, name, price FROM products WHERE sku = %s",
              lambda r, n: (f"SKU-{r.randint(1, n['products'])}",), 10),
    Statement("an order with its items",
              "SELECT oi.product_id, oi.quantity, oi.unit_price FROM order_items oi "
              "JOIN orders o ON o.id = oi.order_id WHERE o.id = %s",
              lambda r, n: (r.randint(1, n["orders"]),), 10),
    # the back office
    Statement("orders waiting to be paid, oldest first",
              "SELECT id, customer_id, total FROM orders WHERE status = 'new' ORDER BY placed_at LIMIT 50",
              lambda r, n: (), 5),
    Statement("referrals in the last day, per referrer",
              "SELECT referred_by_id, count(*) FROM orders WHERE referred_by_id IS NOT NULL "
              "AND placed_at >= now() - interval '1 day' GROUP BY referred_by_id",
              lambda r, n: (), 3),
    Statement("orders a customer referred",
              "SELECT count(*) FROM orders WHERE referred_by_id = %s",
              lambda r, n: (r.randint(1, n["customers"]),), 5),
    Statement("a product's sales",
              "SELECT sum(quantity) FROM order_items WHERE product_id = %s",
              lambda r, n: (r.randint(1, n["products"]),), 3),
    # the writes
    Statement("an order paid",
              "UPDATE orders SET status = 'paid' WHERE id = %s AND status = 'new'",
              lambda r, n: (r.randint(1, n["orders"]),), 3),
    Statement("a new order",
              "INSERT INTO orders (customer_id, status, total, item_count, placed_at) "
              "VALUES (%s, 'new', %s, 1, now())",
              lambda r, n: (r.randint(1, n["customers"]), r.randint(1, 500)), 2),
)


class WorkloadError(Exception):
    """The workload cannot run; the message says why."""


def _sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The id range of each table (parameters are drawn inside it), in one statement."""
    tables = ("customers", "products", "orders")
    try:
        row = conn.execute(
            "SELECT " + ", ".join(f"(SELECT coalesce(max(id), 0) FROM {t})" for t in tables)
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        raise WorkloadError(
            "this is not the shop's database: no customers, products or orders table "
            "(alembic upgrade head in examples/shop first)"
        ) from None
    sizes = dict(zip(tables, (int(v) for v in row or (0, 0, 0)), strict=True))
    empty = [t for t, n in sizes.items() if not n]
    if empty:
        raise WorkloadError(f"{', '.join(empty)} empty: seed the shop first (helios-migrate demo does)")
    return sizes


def run(url: str, *, rounds: int = 100, seconds: float = 20.0, seed: int = 17) -> dict[str, tuple[int, float]]:
    """Run the mix until ``rounds`` rounds or ``seconds`` seconds; per statement, its calls and the
    total time they took (seconds, measured on the client)."""
    r = random.Random(seed)
    done: dict[str, tuple[int, float]] = {s.sql: (0, 0.0) for s in MIX}
    deadline = time.monotonic() + seconds
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="shop-workload", connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise WorkloadError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
    with conn:
        n = _sizes(conn)
        for _ in range(rounds):
            for statement in MIX:
                for _ in range(statement.weight):
                    params = statement.params(r, n)
                    start = time.perf_counter()
                    cur = conn.execute(statement.sql, params)
                    if cur.description is not None:
                        cur.fetchall()
                    calls, spent = done[statement.sql]
                    done[statement.sql] = (calls + 1, spent + time.perf_counter() - start)
            if time.monotonic() >= deadline:
                break
    return done


def queries_file(done: dict[str, tuple[int, float]]) -> str:
    """The statements with ``$n`` parameters, each after ``-- calls=N mean_ms=M``."""
    parts = []
    for statement in MIX:
        calls, spent = done[statement.sql]
        if not calls:
            continue
        sql, k = statement.sql, 0
        while "%s" in sql:
            k += 1
            sql = sql.replace("%s", f"${k}", 1)
        parts.append(f"-- {statement.what}\n-- calls={calls} mean_ms={spent * 1000 / calls:.3f}\n{sql};\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="the shop's database (its writes change rows)")
    parser.add_argument("--rounds", type=int, default=100, help="at most this many rounds of the mix (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="and at most this long (default 20)")
    parser.add_argument("--write-queries", type=Path, metavar="FILE",
                        help="also write the statements, calls and mean times for `indexes --queries FILE`")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds more than 0")
    try:
        done = run(args.database_url, rounds=args.rounds, seconds=args.seconds)
    except WorkloadError as exc:
        print(f"workload: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"workload: a statement failed: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    calls = sum(c for c, _ in done.values())
    spent = sum(t for _, t in done.values())
    print(f"{calls} statements in {spent:.1f} s of query time ({len(MIX)} kinds)")
    for statement in MIX:
        c, t = done[statement.sql]
        print(f"  {c:6d} x {statement.what}: {t * 1000 / max(c, 1):.2f} ms each")
    if args.write_queries:
        args.write_queries.write_text(queries_file(done), encoding="utf-8")
        print(f"wrote {args.write_queries}: helios-migrate indexes --database-url URL --queries {args.write_queries}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
