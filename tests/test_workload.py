"""The concurrent writer/reader harness, on real PostgreSQL servers."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from helios_migrate.workload import Workload, WorkloadError, now

SCHEMA = """
CREATE TYPE state AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE parents (id bigint PRIMARY KEY);
INSERT INTO parents SELECT g FROM generate_series(1, 100) g;
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint NOT NULL REFERENCES parents (id),
    email varchar(80) NOT NULL UNIQUE,
    total numeric(10, 2) NOT NULL CHECK (total >= 0),
    status state NOT NULL,
    note text
);
INSERT INTO orders (parent_id, email, total, status)
    SELECT 1 + g % 100, 'u' || g || '@example.com', g % 500, 'paid'
    FROM generate_series(1, 5000) g;
"""

HOLD_S = 1.0


def _make_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)


def _hold_lock(url: str, seconds: float, mode: str = "ACCESS EXCLUSIVE") -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        conn.execute(f"LOCK TABLE orders IN {mode} MODE")
        t0 = now()
        time.sleep(seconds)
        conn.commit()
        return t0, now()


def test_a_held_access_exclusive_lock_shows_as_a_write_and_read_stall(fresh_db: str) -> None:
    _make_schema(fresh_db)
    began = time.monotonic()
    with Workload(fresh_db, "orders", writers=2, readers=1, max_duration_s=20, seed=1) as load:
        time.sleep(0.3)
        before = load.stalls_between(load.started_at or 0.0, now())
        t0, t1 = _hold_lock(fresh_db, HOLD_S)
        time.sleep(0.3)
    assert time.monotonic() - began < 15

    assert before.write_s < 0.5 and before.read_s < 0.5, before
    assert HOLD_S * 0.8 <= load.longest_write_stall_s <= HOLD_S + 0.7, load.summary()
    assert HOLD_S * 0.8 <= load.longest_read_stall_s <= HOLD_S + 0.7, load.summary()
    window = load.stalls_between(t0, t1)
    assert window.write_s >= HOLD_S * 0.8 and window.read_s >= HOLD_S * 0.8
    assert window.longest_write is not None and window.longest_write.ok
    # Outside the lock, nothing waited.
    after = load.stalls_between(t1 + 0.05, now())
    assert after.write_s < 0.5, after
    counts = load.counts
    assert counts["insert"] > 0 and counts["update"] > 0 and counts["select"] > 0, counts
    assert load.errors == [], load.error_summary()


def test_without_a_lock_stalls_stay_small_and_rows_are_kept(fresh_db: str) -> None:
    _make_schema(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        before = conn.execute("SELECT sum(total), count(*) FROM orders").fetchone()
    with Workload(fresh_db, "orders", writers=2, readers=1, max_duration_s=20) as load:
        time.sleep(1.0)
    assert load.longest_write_stall_s < 0.5, load.summary()
    assert load.longest_read_stall_s < 0.5, load.summary()
    assert load.errors == [], load.error_summary()
    assert load.counts["insert"] > 10
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        after = conn.execute(
            "SELECT sum(total) FILTER (WHERE id <= 5000), count(*) FROM orders"
        ).fetchone()
        # No session of the load is left holding a transaction open.
        idle_in_txn = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'helios-workload' AND state <> 'idle'"
        ).fetchone()
    assert before is not None and after is not None and idle_in_txn is not None
    assert after[0] == before[0]  # updates write values back unchanged
    assert after[1] == before[1] + load.counts["insert"]
    assert idle_in_txn[0] == 0


def test_share_lock_stalls_writes_only(fresh_db: str) -> None:
    _make_schema(fresh_db)
    with Workload(fresh_db, "orders", writers=1, readers=1, max_duration_s=20) as load:
        time.sleep(0.2)
        _hold_lock(fresh_db, HOLD_S, "SHARE")
        time.sleep(0.2)
    assert load.longest_write_stall_s >= HOLD_S * 0.8
    assert load.longest_read_stall_s < 0.5


def test_keeps_going_when_the_updated_column_disappears(fresh_db: str) -> None:
    _make_schema(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ADD COLUMN doomed int DEFAULT 0")
    with Workload(
        fresh_db, "orders", update_column="doomed", writers=2, readers=1, max_duration_s=20
    ) as load:
        time.sleep(0.3)
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("ALTER TABLE orders DROP COLUMN doomed")
        dropped = now()
        time.sleep(0.5)
    errors = load.errors
    assert errors, "updates of the dropped column should fail"
    assert all("doomed" in (e.error or "") for e in errors), load.error_summary()
    # Reads and inserts carried on after the drop.
    later = [r for r in load.records if r.start > dropped + 0.1 and r.ok]
    assert any(r.kind == "select" for r in later) and any(r.kind == "insert" for r in later)


def test_auto_update_column_follows_the_table(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
        conn.execute("INSERT INTO t SELECT g, g, g FROM generate_series(1, 1000) g")
    with Workload(fresh_db, "t", writers=1, readers=0, inserts=False, max_duration_s=20) as load:
        time.sleep(0.2)
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("ALTER TABLE t DROP COLUMN a")
        dropped = now()
        time.sleep(0.6)
    later = [r for r in load.records if r.start > dropped + 0.4]
    assert later and all(r.ok for r in later), load.error_summary()


def test_a_blocked_write_at_stop_is_cancelled_and_counted(fresh_db: str) -> None:
    _make_schema(fresh_db)
    release = threading.Event()

    def hold() -> None:
        with psycopg.connect(fresh_db) as conn:
            conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            release.wait(10)
            conn.rollback()

    holder = threading.Thread(target=hold)
    began = time.monotonic()
    with Workload(fresh_db, "orders", writers=1, readers=1, max_duration_s=1.0) as load:
        time.sleep(0.2)
        holder.start()
        assert load.wait(5)  # stops by itself at max_duration_s, cancelling the blocked operations
    release.set()
    holder.join(10)
    assert time.monotonic() - began < 6
    assert load.counts["cancelled"] >= 1
    assert load.longest_write_stall_s >= 0.6
    assert load.errors == []
    assert "max_duration_s" in (load.stop_reason or "")


def test_max_ops_bounds_the_run(fresh_db: str) -> None:
    _make_schema(fresh_db)
    with Workload(fresh_db, "orders", writers=2, readers=1, max_ops=50, max_duration_s=20) as load:
        assert load.wait(15)
    assert sum(load.counts[k] for k in ("insert", "update", "select")) == 50
    assert "max_ops" in (load.stop_reason or "")


def test_text_keys_and_custom_statements(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO kv SELECT 'k' || g, g FROM generate_series(1, 200) g")
    with Workload(fresh_db, "kv", writers=1, readers=1, max_duration_s=20) as load:
        time.sleep(0.3)
    assert load.errors == [], load.error_summary()
    assert load.counts["insert"] > 0 and load.counts["update"] > 0
    with Workload(
        fresh_db,
        "kv",
        writers=1,
        readers=0,
        insert_sql="INSERT INTO kv VALUES (md5(random()::text), 0)",
        insert_fraction=1.0,
        max_ops=20,
    ) as load:
        assert load.wait(10)
    assert load.counts["insert"] == 20 and load.errors == []


def test_refuses_a_table_without_a_usable_key(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE nokey (a int)")
    with pytest.raises(WorkloadError, match="primary key"):
        Workload(fresh_db, "nokey").start()
    with pytest.raises(WorkloadError, match="no table"):
        Workload(fresh_db, "missing").start()
