"""Index advice benchmark: does ``helios-migrate indexes`` find the indexes a DBA would add?

    python bench/index_advice.py                      # both servers: embedded PG 18 and Debian PG 15
    python bench/index_advice.py --server embedded    # one server
    python bench/index_advice.py --scale 5            # 5x the rows (default scale 1)
    python bench/index_advice.py --json results.json
    python bench/index_advice.py --server debian --hypopg   # advice verified with HypoPG (Debian package)
    python bench/index_advice.py --queries-file       # through --queries FILE, not pg_stat_statements
    python bench/index_advice.py --judge copy         # advice judged on a throwaway copy of schema + statistics

On a server it starts (with ``shared_preload_libraries = 'pg_stat_statements'``), it builds a
pgbench-like schema (branches, tellers, accounts, history) plus a shop (customers, products, orders,
order_lines), runs a fixed workload of the queries in ``WORKLOAD`` (each with a known answer in
``KNOWN_GOOD``, or none), runs ``helios-migrate indexes --format json`` and scores the advice.
When pg_stat_statements cannot be loaded it says so and feeds the same queries, with their
measured calls and times, through ``--queries FILE``.

Definitions (what the figures mean):

- An index is written ``(equality columns in any order | then these columns in order)``, with
  columns it must carry (``INCLUDE``, or anywhere in the key) and a predicate it must have (a
  partial index), where a DBA would write them.  A suggestion **matches** a known-good index when
  it is on the same table and its leading columns are the known-good index's: the first len(eq)
  columns are the equality set, the next ones the ordered rest; a column a partial suggestion's
  predicate fixes (``WHERE status = 'pending'``) counts as an equality column.  Trailing extra
  columns are allowed (the index still serves the query).  A known-good index with a predicate is
  matched only by a suggestion with that predicate; one with covering columns only by a
  suggestion holding them in its key or INCLUDE list.
- **recall** = known-good indexes matched by at least one suggestion / known-good indexes.
- **precision** = suggestions that match a known-good index or an ``ACCEPTABLE`` one (written down
  below, with why a DBA would keep it) / suggestions.  A suggestion matching nothing is a miss.
- **redundant** suggestions: one whose columns are a leading prefix of (or equal to) an existing
  valid, non-partial B-tree index of the table, or of another suggestion on the same table with
  the same predicate; a partial one whose predicate's columns and key lead a full index or
  suggestion (that index already serves its queries).  Must be 0.  (A suggestion that makes an *existing* index redundant, as the command reports in
  ``replaces``, is not itself redundant.)
- **workload time**: wall time of one pass of the workload (every query its number of calls,
  parameters from a fixed seed), before and after the suggested indexes are built with
  ``CREATE INDEX CONCURRENTLY`` (then ANALYZE).  Noisy on a shared machine.
- **write overhead**: wall time of a fixed batch of INSERT/UPDATE (in one transaction, rolled back
  so every run starts from the same data; the fastest of 3 runs), before and after.  The servers
  run with fsync off, so this is the CPU cost of maintaining the indexes, not of their WAL on disk;
  on a loaded machine it is noisy.  The WAL the same batch writes, before and after, counts the
  index maintenance without that noise (each index entry added is WAL-logged).

Exit code: 1 when recall < 90% or a redundant suggestion appears on any server; 2 when a server
or the command could not run; 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from helios_migrate import pgserver  # noqa: E402

RECALL_GOAL = 0.90

SCHEMA = """
CREATE TABLE branches (bid integer PRIMARY KEY, bbalance integer NOT NULL, filler text);
CREATE TABLE tellers (tid integer PRIMARY KEY, bid integer NOT NULL REFERENCES branches,
                      tbalance integer NOT NULL, filler text);
CREATE TABLE accounts (aid integer PRIMARY KEY, bid integer NOT NULL REFERENCES branches,
                       abalance integer NOT NULL, email text NOT NULL, filler text);
CREATE TABLE history (id bigserial PRIMARY KEY, tid integer NOT NULL REFERENCES tellers,
                      bid integer NOT NULL, aid integer NOT NULL REFERENCES accounts,
                      delta integer NOT NULL, mtime timestamptz NOT NULL, filler text);
CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, country text NOT NULL,
                        city text NOT NULL, name text NOT NULL);
CREATE TABLE products (id integer PRIMARY KEY, sku text NOT NULL, category integer NOT NULL,
                       name text NOT NULL, price numeric(10, 2) NOT NULL);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers,
                     status text NOT NULL, created_at timestamptz NOT NULL, note text);
CREATE TABLE order_lines (id bigserial PRIMARY KEY, order_id integer NOT NULL REFERENCES orders,
                          product_id integer NOT NULL REFERENCES products, quantity integer NOT NULL);
CREATE TABLE jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL,
                   run_at timestamptz NOT NULL, done_at timestamptz, attempts integer NOT NULL DEFAULT 0);
-- the index already there: the query on customer_id alone is served by it
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
"""


def sizes(scale: int) -> dict[str, int]:
    return {
        "branches": 10 * scale, "tellers": 100 * scale, "accounts": 100_000 * scale,
        "history": 200_000 * scale, "customers": 50_000 * scale, "products": 20_000 * scale,
        "orders": 200_000 * scale, "order_lines": 500_000 * scale, "jobs": 200_000 * scale,
    }


def load_sql(n: dict[str, int]) -> str:
    return f"""
INSERT INTO branches SELECT g, 0, 'b' FROM generate_series(1, {n['branches']}) g;
INSERT INTO tellers SELECT g, (g - 1) % {n['branches']} + 1, 0, 't' FROM generate_series(1, {n['tellers']}) g;
INSERT INTO accounts SELECT g, (g - 1) % {n['branches']} + 1, (hashint4(g) % 100000),
       'a' || g || '@example.com', repeat('x', 60) FROM generate_series(1, {n['accounts']}) g;
INSERT INTO history (tid, bid, aid, delta, mtime, filler)
SELECT (g - 1) % {n['tellers']} + 1, (g - 1) % {n['branches']} + 1, (hashint4(g) & 2147483647) % {n['accounts']} + 1,
       hashint4(g) % 5000, '2026-01-01'::timestamptz + g * interval '10 seconds', repeat('h', 20)
FROM generate_series(1, {n['history']}) g;
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'country' || (g % 50),
       'city' || (g % 2000), 'name ' || g FROM generate_series(1, {n['customers']}) g;
INSERT INTO products SELECT g, 'SKU-' || g, g % 2000, 'product ' || g, (g % 1000) / 10.0
FROM generate_series(1, {n['products']}) g;
INSERT INTO orders SELECT g, (hashint4(g) & 2147483647) % {n['customers'] // 25} + 1,
       CASE WHEN g % 500 = 0 THEN 'pending' WHEN g % 10 = 0 THEN 'cancelled' ELSE 'delivered' END,
       '2026-01-01'::timestamptz + g * interval '1 minute', repeat('n', 40)
FROM generate_series(1, {n['orders']}) g;
INSERT INTO order_lines (order_id, product_id, quantity)
SELECT (g - 1) % {n['orders']} + 1, (hashint4(g) & 2147483647) % {n['products']} + 1, g % 5 + 1
FROM generate_series(1, {n['order_lines']}) g;
INSERT INTO jobs (queue, payload, run_at, done_at)
SELECT 'q' || (g % 5), repeat('p', 50), '2026-01-01'::timestamptz + g * interval '10 seconds',
       CASE WHEN g % 100 <> 0 THEN '2026-01-01'::timestamptz + g * interval '10 seconds' + interval '1 minute' END
FROM generate_series(1, {n['jobs']}) g;
"""


@dataclass(frozen=True)
class Q:
    sql: str
    params: Callable[[random.Random, dict[str, int]], tuple[Any, ...]]
    calls: int
    expect: str
    """The known-good index this query needs (a KNOWN_GOOD key), or why none is expected."""


def _at(r: random.Random, span_minutes: int) -> Any:
    import datetime as dt
    return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=r.randrange(span_minutes))


def _window(r: random.Random, span_minutes: int, width: int) -> tuple[Any, Any]:
    import datetime as dt
    start = _at(r, span_minutes)
    return start, start + dt.timedelta(minutes=width)


@dataclass(frozen=True)
class Good:
    """An index a DBA would build: equality columns (any order), then ``rest`` in order; columns
    it must carry (key or INCLUDE); the predicate it must have (a partial index)."""

    table: str
    eq: frozenset[str]
    rest: tuple[str, ...] = ()
    covers: frozenset[str] = frozenset()
    where: str | None = None


def _g(table: str, eq: set[str], rest: tuple[str, ...] = (), covers: set[str] = frozenset(),  # type: ignore[assignment]
       where: str | None = None) -> Good:
    return Good(table, frozenset(eq), rest, frozenset(covers), where)


KNOWN_GOOD: dict[str, Good] = {
    "accounts_email": _g("accounts", {"email"}),
    "accounts_bid_abalance": _g("accounts", {"bid"}, ("abalance",)),
    "accounts_abalance": _g("accounts", set(), ("abalance",)),
    "history_aid_mtime": _g("history", {"aid"}, ("mtime",)),
    "history_mtime": _g("history", set(), ("mtime",)),
    "history_tid": _g("history", {"tid"}),
    "customers_email": _g("customers", {"email"}),
    "customers_country_city": _g("customers", {"country", "city"}),
    "products_sku": _g("products", {"sku"}),
    "products_category": _g("products", {"category"}),
    "orders_customer_status_created": _g("orders", {"customer_id", "status"}, ("created_at",)),
    # a rare constant status: a DBA writes (created_at) WHERE status = 'pending'.  Through
    # pg_stat_statements the literal is a $n, so the full (status, created_at) matches too
    "orders_pending_created": _g("orders", {"status"}, ("created_at",)),
    "orders_created_at": _g("orders", set(), ("created_at",)),
    "order_lines_order_id": _g("order_lines", {"order_id"}),
    "order_lines_product_id": _g("order_lines", {"product_id"}),
    # a job queue: 1% of the rows are still to do; the index holds only those (partial)
    "jobs_queue_pending": _g("jobs", {"queue"}, ("run_at",), where="done_at IS NULL"),
    # a teller's total over its ~2,000 rows spread over the table: covering, an index-only scan
    "history_tid_delta": _g("history", {"tid"}, covers={"delta"}),
    # a branch's totals per teller: groups in index order, covering
    "history_bid_tid_delta": _g("history", {"bid"}, ("tid",), covers={"delta"}),
    # a case-insensitive login: an expression index
    "customers_lower_email": _g("customers", {"lower(email)"}),
}

# Indexes a DBA would keep though not in KNOWN_GOOD (none so far; add with the reason).
ACCEPTABLE: dict[str, Good] = {}


def workload(n: dict[str, int]) -> list[Q]:
    """The queries; orders go to 1 customer in 25 (about 100 orders each), so the newest orders
    of one customer and status is a real sort, not 4 rows."""
    a, c, o, p, t = n["accounts"], n["customers"], n["orders"], n["products"], n["tellers"]
    hist_minutes = n["history"] // 6
    return [
        # lookups by a non-key column
        Q("SELECT aid, abalance FROM accounts WHERE email = %s",
          lambda r, n: (f"a{r.randint(1, a)}@example.com",), 40, "accounts_email"),
        Q("SELECT * FROM customers WHERE email = %s",
          lambda r, n: (f"c{r.randint(1, c)}@example.com",), 40, "customers_email"),
        Q("SELECT id, price FROM products WHERE sku = %s",
          lambda r, n: (f"SKU-{r.randint(1, p)}",), 40, "products_sku"),
        Q("SELECT id, name FROM customers WHERE country = %s AND city = %s",
          lambda r, n: (f"country{(k := r.randrange(2000)) % 50}", f"city{k}"), 20, "customers_country_city"),
        Q("SELECT id, name FROM products WHERE category = %s",
          lambda r, n: (r.randrange(2000),), 20, "products_category"),
        # range scans
        Q("SELECT aid FROM accounts WHERE bid = %s AND abalance > %s",
          lambda r, n: (r.randint(1, n["branches"]), 99_000), 20, "accounts_bid_abalance"),
        Q("SELECT count(*) FROM history WHERE mtime >= %s AND mtime < %s",
          lambda r, n: _window(r, hist_minutes, 60), 20, "history_mtime"),
        Q("SELECT id, customer_id FROM orders WHERE created_at BETWEEN %s AND %s",
          lambda r, n: _window(r, o, 30), 20, "orders_created_at"),
        Q("DELETE FROM history WHERE mtime < %s",
          lambda r, n: ("2025-12-01",), 5, "history_mtime"),
        # ORDER BY ... LIMIT
        Q("SELECT aid, abalance FROM accounts ORDER BY abalance DESC LIMIT 10",
          lambda r, n: (), 10, "accounts_abalance"),
        Q("SELECT delta, mtime FROM history WHERE aid = %s ORDER BY mtime DESC LIMIT 10",
          lambda r, n: (r.randint(1, a),), 40, "history_aid_mtime"),
        Q("SELECT id, created_at FROM orders WHERE customer_id = %s AND status = %s "
          "ORDER BY created_at DESC LIMIT 20",
          lambda r, n: (r.randint(1, c // 25), "delivered"), 40, "orders_customer_status_created"),
        # partial-index case: a rare constant status
        Q("SELECT id, customer_id FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 50",
          lambda r, n: (), 30, "orders_pending_created"),
        # joins on foreign-key columns
        Q("SELECT ol.product_id, ol.quantity FROM orders o JOIN order_lines ol ON ol.order_id = o.id "
          "WHERE o.id = %s", lambda r, n: (r.randint(1, o),), 40, "order_lines_order_id"),
        Q("SELECT sum(quantity) FROM order_lines WHERE product_id = %s",
          lambda r, n: (r.randint(1, p),), 30, "order_lines_product_id"),
        Q("SELECT p.name, sum(ol.quantity) FROM order_lines ol JOIN products p ON p.id = ol.product_id "
          "WHERE p.category = %s GROUP BY p.name", lambda r, n: (r.randrange(2000),), 5, "products_category"),
        Q("SELECT t.tid, sum(h.delta) FROM history h JOIN tellers t ON t.tid = h.tid "
          "WHERE t.tid = %s GROUP BY t.tid", lambda r, n: (r.randint(1, t),), 10, "history_tid"),
        Q("SELECT h.delta FROM history h WHERE h.tid = %s AND h.bid = %s",
          lambda r, n: ((k := r.randint(1, t)), (k - 1) % n["branches"] + 1), 10, "history_tid"),
        # a partial index: the queue's next jobs among the 1% not done
        Q("SELECT id, payload FROM jobs WHERE queue = %s AND done_at IS NULL AND run_at <= %s "
          "ORDER BY run_at LIMIT 10", lambda r, n: (f"q{r.randrange(5)}", "2027-01-01"), 40, "jobs_queue_pending"),
        # covering: a teller's total; a branch's totals per teller (GROUP BY)
        Q("SELECT sum(delta) FROM history WHERE tid = %s", lambda r, n: (r.randint(1, t),), 20, "history_tid_delta"),
        Q("SELECT tid, sum(delta) FROM history WHERE bid = %s GROUP BY tid",
          lambda r, n: (r.randint(1, n["branches"]),), 10, "history_bid_tid_delta"),
        # an expression: a login by e-mail, whatever its case
        Q("SELECT id, name FROM customers WHERE lower(email) = lower(%s)",
          lambda r, n: (f"C{r.randint(1, c)}@Example.com",), 30, "customers_lower_email"),
        # already served by an existing index (primary keys, orders_customer_id_idx)
        Q("SELECT * FROM orders WHERE customer_id = %s", lambda r, n: (r.randint(1, c // 25),), 30, "served"),
        Q("SELECT * FROM accounts WHERE aid = %s", lambda r, n: (r.randint(1, a),), 40, "served"),
        Q("UPDATE accounts SET abalance = abalance + %s WHERE aid = %s",
          lambda r, n: (r.randint(-100, 100), r.randint(1, a)), 40, "served"),
        Q("SELECT * FROM customers WHERE id = ANY(%s)",
          lambda r, n: ([r.randint(1, c) for _ in range(5)],), 20, "served"),
        # no index helps: a whole-table aggregate, a non-sargable predicate, a small table
        Q("SELECT bid, sum(abalance) FROM accounts GROUP BY bid", lambda r, n: (), 3, "none"),
        Q("SELECT count(*) FROM customers WHERE name LIKE %s", lambda r, n: ("%7%",), 3, "none"),
        Q("SELECT count(*) FROM orders WHERE status <> %s", lambda r, n: ("delivered",), 3, "none"),
        Q("SELECT tid FROM tellers WHERE bid = %s", lambda r, n: (r.randint(1, n["branches"]),), 20, "none"),
    ]


def write_wal(conn: psycopg.Connection[Any], n: dict[str, int], rows: int) -> int:
    """The WAL bytes the write batch generates: every index entry it adds is WAL-logged, so this
    counts the index maintenance without the machine's noise."""
    lsn = "SELECT pg_current_wal_insert_lsn()"
    before = conn.execute(lsn).fetchone()[0]  # type: ignore[index]
    write_batch(conn, n, rows)
    row = conn.execute(f"SELECT pg_wal_lsn_diff(({lsn}), %s)", (before,)).fetchone()
    return int(row[0]) if row else 0


def write_batch(conn: psycopg.Connection[Any], n: dict[str, int], rows: int) -> float:
    """A fixed batch of INSERT/UPDATE in one transaction, rolled back; its wall time."""
    r = random.Random(7)
    start = time.perf_counter()
    with conn.transaction(force_rollback=True):
        for i in range(rows):
            oid = n["orders"] + 1 + i
            conn.execute("INSERT INTO orders VALUES (%s, %s, 'delivered', now(), 'w')",
                         (oid, r.randint(1, n["customers"] // 25)))
            conn.execute("INSERT INTO order_lines (order_id, product_id, quantity) VALUES (%s, %s, 1)",
                         (oid, r.randint(1, n["products"])))
            aid = r.randint(1, n["accounts"])
            conn.execute("UPDATE accounts SET abalance = abalance + 1 WHERE aid = %s", (aid,))
            conn.execute("INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (%s, 1, %s, 1, now())",
                         (r.randint(1, n["tellers"]), aid))
            conn.execute("INSERT INTO jobs (queue, payload, run_at) VALUES (%s, 'p', now())", (f"q{i % 5}",))
    return time.perf_counter() - start


def run_workload(conn: psycopg.Connection[Any], queries: list[Q], n: dict[str, int],
                 times: dict[str, list[float]] | None = None) -> float:
    """One pass of the workload (every query its calls, fixed parameters); total wall time."""
    r = random.Random(42)
    total = 0.0
    for q in queries:
        spent = 0.0
        for _ in range(q.calls):
            params = q.params(r, n)
            start = time.perf_counter()
            if q.sql.startswith(("DELETE", "UPDATE")):
                conn.execute(q.sql, params)
            else:
                conn.execute(q.sql, params).fetchall()
            spent += time.perf_counter() - start
        if times is not None:
            times.setdefault(q.sql, []).append(spent)
        total += spent
    return total


def _key(text: str) -> str:
    """An element or predicate compared as text: lower case, no casts, no quotes or parentheses."""
    text = re.sub(r"::[a-z ]+", "", text.lower())
    return re.sub(r"[\"()\s]", "", text)


def _predicate_columns(where: str | None) -> list[str]:
    """The columns a suggestion's predicate fixes (``status = 'x'``, ``done_at IS NULL``, ``archived``)."""
    if not where:
        return []
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|'[^']*'", where)
    return [w for w in words if not w.startswith("'") and w.upper() not in {"IS", "NOT", "NULL", "AND", "TRUE", "FALSE"}]


@dataclass(frozen=True)
class Suggested:
    table: str
    columns: list[str]
    include: list[str]
    where: str | None

    def __str__(self) -> str:
        text = f"{self.table}({', '.join(self.columns)})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        return text + (f" WHERE {self.where}" if self.where else "")


def _leads(columns: list[str], eq: frozenset[str], rest: tuple[str, ...]) -> bool:
    k = len(eq)
    keys = [_key(c) for c in columns]
    return (set(keys[:k]) == {_key(e) for e in eq} and keys[k:k + len(rest)] == [_key(r) for r in rest]
            and len(keys) >= k + len(rest))


def matches(s: Suggested, good: Good) -> bool:
    if s.table != good.table:
        return False
    if good.where is not None and _key(s.where or "") != _key(good.where):
        return False
    fixed = [c for c in _predicate_columns(s.where) if c in good.eq]  # a partial's predicate fixes these
    lead = fixed + [c for c in s.columns if c not in fixed]
    if not _leads(lead, good.eq, good.rest):
        return False
    carried = {_key(c) for c in (*s.columns, *s.include)}
    return {_key(c) for c in good.covers} <= carried


def _existing(conn: psycopg.Connection[Any]) -> dict[str, list[list[str]]]:
    rows = conn.execute("""
        SELECT c.relname, i.indexrelid,
               array_agg(a.attname ORDER BY k.ord) AS cols
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
        CROSS JOIN LATERAL unnest(i.indkey[:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND i.indisvalid AND i.indpred IS NULL
          AND am.amname = 'btree'
        GROUP BY c.relname, i.indexrelid""").fetchall()
    out: dict[str, list[list[str]]] = {}
    for table, _oid, cols in rows:
        out.setdefault(table, []).append(list(cols))
    return out


def _redundant(i: int, s: Suggested, suggestions: list[Suggested], existing: dict[str, list[list[str]]]) -> list[str]:
    """Why suggestion ``i`` is redundant: the indexes (existing, or other suggestions) that serve
    its queries already."""
    keys = [_key(c) for c in s.columns]
    full = [_key(c) for c in _predicate_columns(s.where)]
    out = []
    for cols in existing.get(s.table, []):
        other = [_key(c) for c in cols]
        if (s.where is None and other[:len(keys)] == keys) or (
                s.where is not None and sorted(other[:len(full)]) == sorted(full)
                and other[len(full):len(full) + len(keys)] == keys):
            out.append(f"existing ({', '.join(cols)})")
    for j, o in enumerate(suggestions):
        if j == i or o.table != s.table:
            continue
        other = [_key(c) for c in o.columns]
        same_where = _key(o.where or "") == _key(s.where or "")
        prefix = other[:len(keys)] == keys and (len(other) > len(keys) or j < i)
        if (same_where and prefix) or (s.where is not None and o.where is None and sorted(other[:len(full)]) == sorted(full)
                                       and other[len(full):len(full) + len(keys)] == keys):
            out.append(str(o))
    return out


def score(doc: dict[str, Any], existing: dict[str, list[list[str]]]) -> dict[str, Any]:
    suggestions = [Suggested(s["table"].split(".")[-1], list(s["columns"]), list(s.get("include", [])),
                             s.get("where")) for s in doc["suggestions"]]
    matched = {key for key, good in KNOWN_GOOD.items() if any(matches(s, good) for s in suggestions)}
    kept: list[str] = []
    misses: list[str] = []
    redundant: list[str] = []
    for i, s in enumerate(suggestions):
        good = [k for k, g in {**KNOWN_GOOD, **ACCEPTABLE}.items() if matches(s, g)]
        (kept if good else misses).append(str(s))
        why = _redundant(i, s, suggestions, existing)
        if why:
            redundant.append(f"{s}: served by " + ", ".join(why))
    return {
        "known_good": len(KNOWN_GOOD), "matched": sorted(matched),
        "missed": sorted(set(KNOWN_GOOD) - matched),
        "recall": len(matched) / len(KNOWN_GOOD),
        "suggestions": len(suggestions), "kept": kept, "not_kept": misses,
        "precision": len(kept) / len(suggestions) if suggestions else 1.0,
        "redundant": redundant,
    }


def queries_file(path: Path, queries: list[Q], times: dict[str, list[float]]) -> None:
    """The workload as a --queries file: the SQL with $n placeholders, weighted by what was measured."""
    parts = []
    for q in queries:
        sql, k = q.sql, 0
        while "%s" in sql:
            k += 1
            sql = sql.replace("%s", f"${k}", 1)
        spent = sum(times.get(q.sql, [0.0]))
        parts.append(f"-- calls={q.calls} mean_ms={spent * 1000 / q.calls:.3f}\n{sql};\n")
    path.write_text("\n".join(parts))


def start(kind: str, workdir: Path, preload: bool) -> pgserver.RunningServer:
    starter = pgserver.start_embedded if kind == "embedded" else pgserver.start_debian
    server = starter(workdir)
    if not preload:
        return server
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server.stop()
    return starter(workdir)


def bench_server(kind: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    n = sizes(args.scale)
    queries = workload(n)

    def log(msg: str) -> None:
        print(f"[{kind}] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    server = start(kind, base / kind, preload=True)
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            preloaded = "pg_stat_statements" in conn.execute("SHOW shared_preload_libraries").fetchone()[0]  # type: ignore[index]
            conn.execute("CREATE DATABASE bench")
        url = server.database_url("bench")
        with psycopg.connect(url, autocommit=True) as conn:
            log(f"PostgreSQL {version}: loading scale {args.scale} ({sum(n.values()):,} rows)")
            conn.execute(SCHEMA)
            conn.execute(load_sql(n))
            conn.execute("VACUUM ANALYZE")
            source = "pg_stat_statements"
            if args.queries_file:
                preloaded = False
                source = "--queries file (asked with --queries-file)"
            elif preloaded:
                try:
                    conn.execute("CREATE EXTENSION pg_stat_statements")
                except psycopg.Error as exc:
                    preloaded = False
                    source = f"--queries file (CREATE EXTENSION pg_stat_statements failed: {exc})"
            else:
                source = "--queries file (pg_stat_statements could not be preloaded)"
            if not preloaded:
                log(f"pg_stat_statements unavailable: the queries go through {source}")
            run_workload(conn, queries, n)  # warm-up: caches, and the DELETE has deleted
            writes_before = min(write_batch(conn, n, args.write_rows) for _ in range(3))
            wal_before = write_wal(conn, n, args.write_rows)
            existing = _existing(conn)
            if args.hypopg or args.judge == "hypopg":
                try:
                    conn.execute("CREATE EXTENSION hypopg")
                except psycopg.Error as exc:
                    log(f"no HypoPG on this server ({str(exc).splitlines()[0]}): advice not verified")
            if preloaded:
                conn.execute("SELECT pg_stat_statements_reset()")
            times: dict[str, list[float]] = {}
            log("workload before")
            before = min(run_workload(conn, queries, n, times) for _ in range(args.repeat))
        cmd = [sys.executable, "-m", "helios_migrate", "indexes", "--database-url", url,
               "--format", "json", "--limit", "50"]
        if args.judge:
            cmd += ["--judge", args.judge]
        if not preloaded:
            qfile = base / f"{kind}-queries.sql"
            queries_file(qfile, queries, times)
            cmd += ["--queries", str(qfile)]
        log("helios-migrate indexes")
        t1 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
        advice_s = time.perf_counter() - t1
        if done.returncode != 0:
            raise RuntimeError(f"helios-migrate indexes exited {done.returncode}: {done.stderr.strip()}")
        doc = json.loads(done.stdout)
        result = score(doc, existing)
        with psycopg.connect(url, autocommit=True) as conn:
            log(f"building {len(doc['suggestions'])} index(es) concurrently")
            t2 = time.perf_counter()
            for s in doc["suggestions"]:
                conn.execute(s["create_index"])
            conn.execute("ANALYZE")
            build_s = time.perf_counter() - t2
            log("workload after")
            times_after: dict[str, list[float]] = {}
            after = min(run_workload(conn, queries, n, times_after) for _ in range(args.repeat))
            writes_after = min(write_batch(conn, n, args.write_rows) for _ in range(3))
            wal_after = write_wal(conn, n, args.write_rows)
        result.update({
            "server": kind, "version": version, "source": source, "scale": args.scale,
            "hypopg_verified": doc["verified"],
            "judged_by": doc.get("judged_by"),
            "rejected": [str(Suggested(x["table"].split(".")[-1], x["columns"], x.get("include", []), x.get("where")))
                         for x in doc.get("rejected", [])],
            "advice_seconds": round(advice_s, 2), "build_seconds": round(build_s, 2),
            "workload_before_s": round(before, 3), "workload_after_s": round(after, 3),
            "speedup": before / after if after else None,
            "write_batch_rows": args.write_rows,
            "writes_before_s": round(writes_before, 3), "writes_after_s": round(writes_after, 3),
            "write_overhead": writes_after / writes_before - 1 if writes_before else None,
            "write_wal_before": wal_before, "write_wal_after": wal_after,
            "write_wal_overhead": wal_after / wal_before - 1 if wal_before else None,
            "suggested": [str(Suggested(s["table"].split(".")[-1], s["columns"], s.get("include", []), s.get("where")))
                          for s in doc["suggestions"]],
            "per_query_ms": {q.sql: [round(min(times[q.sql]) * 1000, 1), round(min(times_after[q.sql]) * 1000, 1)]
                             for q in queries},
            "kept_unverified": [str(Suggested(x["table"].split(".")[-1], x["columns"], x.get("include", []), x.get("where")))
                                for x in doc["suggestions"] if doc["verified"] and not x["verified"]],
            "include_verified": [str(Suggested(x["table"].split(".")[-1], x["columns"], x.get("include", []), x.get("where")))
                                 for x in doc["suggestions"] if x.get("include_verified")],
            "not_advised": doc["not_advised"], "served": len(doc["served"]), "served_queries": doc["served"],
            "total_seconds": round(time.perf_counter() - t0, 1),
        })
        return result
    finally:
        server.stop()


def _judged(r: dict[str, Any]) -> str:
    if r.get("judged_by") == "copy":
        return "verified on a throwaway copy of the schema and statistics"
    return "verified with HypoPG" if r["hypopg_verified"] else "not verified"


def report(r: dict[str, Any]) -> None:
    print(f"\n== {r['server']}: PostgreSQL {r['version']}, scale {r['scale']}, queries from {r['source']}, "
          f"{_judged(r)}")
    print(f"recall     {r['recall']:.0%} ({len(r['matched'])} of {r['known_good']} known-good indexes)"
          + (f"; missed: {', '.join(r['missed'])}" if r["missed"] else ""))
    print(f"precision  {r['precision']:.0%} ({len(r['kept'])} of {r['suggestions']} suggestions kept)"
          + (f"; not kept: {', '.join(r['not_kept'])}" if r["not_kept"] else ""))
    print(f"redundant  {len(r['redundant'])}" + "".join(f"\n  - {x}" for x in r["redundant"]))
    print(f"suggested  {', '.join(r['suggested']) or '(none)'}")
    print(f"served by an existing index: {r['served']} query(ies); not advised: {len(r['not_advised'])}")
    if r.get("judged_by"):
        print(f"rejected   {', '.join(r['rejected']) or 'none'} (by the planner)")
    if r["hypopg_verified"]:
        print(f"judged     kept unverified (covering, no index-only scan planned): {', '.join(r['kept_unverified']) or 'none'}; "
              f"INCLUDE judged through an index-only scan: {', '.join(r['include_verified']) or 'none'}")
    print(f"workload   {r['workload_before_s']:.2f} s before, {r['workload_after_s']:.2f} s after "
          f"(x{r['speedup']:.1f}); index builds {r['build_seconds']:.1f} s; advice {r['advice_seconds']:.1f} s")
    print(f"writes     {r['write_batch_rows']} x (2 INSERT orders/lines, 1 UPDATE accounts, 1 INSERT history, "
          "1 INSERT jobs): "
          f"{r['writes_before_s']:.2f} s before, {r['writes_after_s']:.2f} s after "
          f"({r['write_overhead']:+.0%}); WAL {r['write_wal_before'] / 1e6:.1f} MB before, "
          f"{r['write_wal_after'] / 1e6:.1f} MB after ({r['write_wal_overhead']:+.0%}: index entries written)")
    print(f"(whole run {r['total_seconds']:.0f} s; timings on a shared machine are noisy)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=("embedded", "debian", "both"), default="both")
    parser.add_argument("--scale", type=int, default=1, help="row multiplier (1: ~1.3M rows in all)")
    parser.add_argument("--repeat", type=int, default=1, help="workload passes each side; the fastest counts")
    parser.add_argument("--write-rows", type=int, default=5000, help="iterations of the write batch")
    parser.add_argument("--queries-file", action="store_true",
                        help="feed the workload through --queries FILE even where pg_stat_statements works")
    parser.add_argument("--hypopg", action="store_true",
                        help="CREATE EXTENSION hypopg first (where installed), so the advice is verified by the planner")
    parser.add_argument("--judge", choices=("hypopg", "copy", "none"),
                        help="passed to indexes --judge (default: its own; hypopg also creates the extension)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.scale < 1 or args.repeat < 1 or args.write_rows < 1:
        parser.error("--scale, --repeat and --write-rows must be at least 1")
    kinds = ["embedded", "debian"] if args.server == "both" else [args.server]
    results, failed = [], False
    with tempfile.TemporaryDirectory(prefix="index-advice-") as tmp:
        for kind in kinds:
            try:
                r = bench_server(kind, args, Path(tmp))
            except (pgserver.ServerStartError, RuntimeError, psycopg.Error) as exc:
                print(f"\n== {kind}: could not run: {exc}", file=sys.stderr)
                failed = True
                continue
            results.append(r)
            report(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bad = [r["server"] for r in results if r["recall"] < RECALL_GOAL or r["redundant"]]
    if bad:
        print(f"\nFAIL: recall under {RECALL_GOAL:.0%} or a redundant suggestion on: {', '.join(bad)}")
        return 1
    if failed:
        return 2
    print(f"\nOK: recall >= {RECALL_GOAL:.0%} and no redundant suggestion on {', '.join(r['server'] for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
