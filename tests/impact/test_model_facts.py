"""The duration model's inputs, checked against what real servers (PostgreSQL 15 and 18) do:
one row-estimate formula for every command, HOT updates, partial-index selectivity, index-read
columns, collations, and a calibration that measures a serial scan and each key kind's sort."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from helios_migrate.calibration import (
    CACHE_FILE,
    MODEL,
    KeyKind,
    Throughput,
    cached_throughput,
    calibrate,
    measure_sorts,
)
from helios_migrate.changes import QualifiedName
from helios_migrate.check.live import table_sizes_sql
from helios_migrate.effects import RelationLock, RelationRole
from helios_migrate.facts import collect_facts, query_function
from helios_migrate.impact import estimate_step, hot_update_share, predicate_selectivity
from helios_migrate.locks import Blocked, LockMode, strongest_per_relation
from helios_migrate.plan import Phase, Step
from helios_migrate.sql_parse import changes_from_sql

T = QualifiedName("ledger")


def _planner_rows(conn: psycopg.Connection[object], table: str) -> int:
    row = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT * FROM {table}").fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return int(plan[0]["Plan"]["Plan Rows"])


def _check_rows(conn: psycopg.Connection[object], table: str) -> int:
    for _schema, name, _total, rows in conn.execute(table_sizes_sql()).fetchall():
        if name == table:
            return int(rows)
    raise AssertionError(f"{table} not listed")


def test_plan_check_and_the_planner_estimate_the_same_rows(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint, amount int, memo text) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO ledger SELECT g, g % 100, 'memo ' || g FROM generate_series(1, 30000) g")
        # Never analyzed: density from the column widths, as the planner's get_rel_data_width.
        never = collect_facts(conn, [T], write_sample_s=None).table(T)
        assert never is not None and never.never_analyzed
        assert never.row_estimate == _check_rows(conn, "ledger") == _planner_rows(conn, "ledger")
        conn.execute("ANALYZE ledger")
        conn.execute("INSERT INTO ledger SELECT g, 1, 'more' FROM generate_series(1, 10000) g")
        # Analyzed, then grown: reltuples / relpages scaled to the current page count.
        grown = collect_facts(conn, [T], write_sample_s=None).table(T)
        assert grown is not None and not grown.never_analyzed
        assert grown.row_estimate == _check_rows(conn, "ledger") == _planner_rows(conn, "ledger")
        assert 35000 < grown.row_estimate < 45000


def _hot_fraction(conn: psycopg.Connection[object], sql: str) -> float:
    before = conn.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'ledger'")
    upd0, hot0 = before.fetchone() or (0, 0)
    conn.execute(sql)
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_sleep(0.05)")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    after = conn.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'ledger'")
    upd1, hot1 = after.fetchone() or (0, 0)
    assert upd1 > upd0
    return (hot1 - hot0) / (upd1 - upd0)


@pytest.mark.parametrize("fillfactor", [100, 80, 60])
def test_hot_share_of_an_update_follows_the_server(fresh_db: str, fillfactor: int) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE ledger (id bigint PRIMARY KEY, account int, amount int, email text, memo text) "
            f"WITH (fillfactor = {fillfactor}, autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO ledger SELECT g, g % 50, g % 1000, 'u' || g || '@example.org', "
                     "'memo ' || g FROM generate_series(1, 20000) g")
        conn.execute("CREATE INDEX ledger_account_idx ON ledger (account)")
        conn.execute("CREATE INDEX ledger_email_idx ON ledger (lower(email)) WHERE amount > 10")
        conn.execute("VACUUM ANALYZE ledger")
        facts = collect_facts(conn, [T], write_sample_s=None)
        table = facts.table(T)
        assert table is not None
        # Expression and predicate columns are read by the index: their updates are never HOT.
        assert {"id", "account", "email", "amount"} <= table.indexed_columns()
        assert "memo" not in table.indexed_columns()
        email_idx = next(i for i in table.indexes if i.name.name == "ledger_email_idx")
        assert email_idx.keys == ("lower(email)",) and email_idx.predicate == "amount > 10"
        assert set(email_idx.referenced) == {"email", "amount"}
        block = facts.server.block_size
        for column in ("account", "email", "amount"):
            assert hot_update_share(table, column, block) == 0.0
        predicted = hot_update_share(table, "memo", block)
        measured = _hot_fraction(conn, "UPDATE ledger SET memo = memo || '!'")
        assert predicted == pytest.approx(measured, abs=0.15), (predicted, measured)
        assert _hot_fraction(conn, "UPDATE ledger SET account = account + 1") == 0.0
    if fillfactor == 100:
        assert predicted < 0.1
    if fillfactor == 60:
        assert predicted > 0.4


def test_partial_index_selectivity_from_pg_stats(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint, state text, note text, n int)")
        conn.execute(
            "INSERT INTO ledger SELECT g, (ARRAY['new','paid','paid','paid','void'])[1 + g % 5], "
            "CASE WHEN g % 10 = 0 THEN 'x' END, g FROM generate_series(1, 20000) g"
        )
        conn.execute("ANALYZE ledger")
        table = collect_facts(conn, [T], write_sample_s=None).table(T)
    assert table is not None
    assert predicate_selectivity(table, "state = 'paid'") == pytest.approx(0.6, abs=0.02)
    assert predicate_selectivity(table, "(state <> 'paid')") == pytest.approx(0.4, abs=0.02)
    assert predicate_selectivity(table, "note IS NOT NULL") == pytest.approx(0.1, abs=0.02)
    assert predicate_selectivity(table, "state = 'void' AND note IS NULL") == pytest.approx(0.18, abs=0.03)
    assert predicate_selectivity(table, None) == 1.0
    # Forms the statistics do not answer: unknown, and the estimate says it assumes every row.
    assert predicate_selectivity(table, "n > 100") is None
    assert predicate_selectivity(table, "lower(state) = 'paid'") is None


def _buffers(conn: psycopg.Connection[object], expr: str) -> int:
    """Shared buffers a query evaluating ``expr`` on every row touches (heap and TOAST)."""
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count({expr}) FROM ledger").fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def test_expression_keys_on_toasted_columns_read_the_toast_only_when_the_server_does(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint, receipt bytea, note text)")
        # ~4 kB of incompressible bytes and ~6 kB of text per row: both stored out of line.
        conn.execute(
            "INSERT INTO ledger SELECT g, (SELECT decode(string_agg(md5((g * 17 + i)::text), ''), 'hex') "
            "FROM generate_series(1, 256) i), (SELECT string_agg(md5((g * 31 + i)::text), '') "
            "FROM generate_series(1, 200) i) FROM generate_series(1, 2000) g"
        )
        conn.execute("VACUUM ANALYZE ledger")
        heap_pages = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'ledger'").fetchone()
        assert heap_pages is not None
        measured = {expr: _buffers(conn, expr) for expr in
                    ("length(receipt)", "octet_length(note)", "md5(receipt)", "length(note)", "upper(note)")}
        facts = collect_facts(conn, [T], write_sample_s=None)
    table = facts.table(T)
    assert table is not None and table.toast_bytes > 1_000_000
    tp = Throughput(1e9, "calibrated")

    def expected(expr: str) -> float:
        sql = f"CREATE INDEX ledger_x ON ledger (({expr}))"
        step = Step("x", Phase.EXPAND, sql=(sql,), changes=tuple(changes_from_sql(sql)))
        impact = estimate_step(step, facts, facts.version, throughput=tp)
        assert impact.duration is not None
        return impact.duration.expected_s

    toast_read_s = table.toast_bytes / (tp.scan_bps * MODEL.detoast_ratio)
    for expr, blocks in measured.items():
        reads_toast = blocks > 5 * heap_pages[0]
        # The server reads every out-of-line value exactly when the estimate charges for it:
        # a size (octet_length, length of bytea) comes from the TOAST pointer.
        assert reads_toast == (expr in ("md5(receipt)", "length(note)", "upper(note)")), (expr, blocks)
        assert (expected(expr) > toast_read_s) == reads_toast, (expr, expected(expr), toast_read_s)


def test_column_collation_is_read_for_text_keys(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE ledger (id int, a text, b text COLLATE "C", c text COLLATE "POSIX", n int)')
        datcollate = conn.execute(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()
        table = collect_facts(conn, [T], write_sample_s=None).table(T)
    assert table is not None
    b, c, n, a = (table.column(x) for x in ("b", "c", "n", "a"))
    assert b is not None and b.collation == "C" and b.bytewise
    assert c is not None and c.collation == "POSIX" and c.bytewise
    assert n is not None and n.collation is None and not n.bytewise
    assert a is not None and a.bytewise == (datcollate is not None and datcollate[0] in ("C", "POSIX"))


def test_calibration_scans_serially_measures_sorts_and_restores_the_session(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # A wide table the planner would scan in parallel: calibration must not time worker start-up.
        conn.execute("CREATE TABLE wide (id int, pad text)")
        conn.execute("INSERT INTO wide SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g")
        conn.execute("VACUUM ANALYZE wide")
        conn.execute("SET max_parallel_workers_per_gather = 3")
        tp = calibrate(conn, use_cache=True, directory=tmp_path)
        after = conn.execute("SELECT current_setting('max_parallel_workers_per_gather'), "
                             "current_setting('enable_indexscan'), current_setting('statement_timeout')").fetchone()
        sorts = measure_sorts(query_function(conn), rows=20_000, repeats=1)
    assert after == ("3", "on", "0")
    assert tp.source == "calibrated" and tp.scan_bps > 20e6
    assert set(tp.sort_row_s) == {k.value for k in KeyKind} and all(v > 0 for v in tp.sort_row_s.values())
    assert set(sorts) == {k.value for k in KeyKind}
    assert 0 < tp.statement_s < 0.5
    cached = cached_throughput(tp.identity or "", directory=tmp_path)
    assert cached is not None and cached.sort_row_s == tp.sort_row_s and cached.statement_s == tp.statement_s
    # An entry written before key kinds were calibrated is measured again, not half-used.
    data = json.loads((tmp_path / CACHE_FILE).read_text())
    for entry in data.values():
        del entry["sort_row_s"]
    (tmp_path / CACHE_FILE).write_text(json.dumps(data))
    assert cached_throughput(tp.identity or "", directory=tmp_path) is None


def test_sort_cost_grows_with_rows_and_text_width() -> None:
    tp = Throughput(1e9, "calibrated")
    fixed = tp.sort_s(KeyKind.FIXED, 1_000_000)
    assert tp.sort_s(KeyKind.FIXED, 2_000_000) > 2 * fixed
    assert tp.sort_s(KeyKind.TEXT, 1_000_000, width=64) > tp.sort_s(KeyKind.TEXT, 1_000_000, width=12)
    assert tp.sort_s(KeyKind.TEXT, 1_000_000, width=33) > fixed
    assert tp.sort_s(KeyKind.FIXED, 1) == 0.0


def test_strongest_lock_per_relation_and_what_it_blocks() -> None:
    a, b = QualifiedName("a"), QualifiedName("b")
    locks = [
        RelationLock(a, RelationRole.TABLE, LockMode.SHARE_UPDATE_EXCLUSIVE),
        RelationLock(b, RelationRole.REFERENCED_TABLE, LockMode.SHARE_ROW_EXCLUSIVE),
        RelationLock(a, RelationRole.TABLE, LockMode.ACCESS_EXCLUSIVE),
        RelationLock(a, RelationRole.TABLE, LockMode.SHARE),
    ]
    strongest = strongest_per_relation(locks)
    assert list(strongest) == [a, b]
    assert strongest[a].mode is LockMode.ACCESS_EXCLUSIVE
    assert strongest[b].mode is LockMode.SHARE_ROW_EXCLUSIVE
    assert LockMode.ACCESS_EXCLUSIVE.blocked is Blocked.READS_AND_WRITES
    assert LockMode.SHARE.blocked is Blocked.WRITES
    assert LockMode.SHARE_UPDATE_EXCLUSIVE.blocked is Blocked.DDL
    assert LockMode.ACCESS_SHARE.blocked is Blocked.NOTHING
    assert [m.blocked.blocks_application for m in (LockMode.SHARE, LockMode.ROW_EXCLUSIVE)] == [True, False]
    assert LockMode.SHARE.blocked_summary() == "writes"
