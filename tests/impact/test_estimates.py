"""Risk levels and renderings for representative steps, on hand-built facts (no server needed)."""

from __future__ import annotations

import json

from helios_migrate.calibration import Throughput
from helios_migrate.changes import QualifiedName
from helios_migrate.effects import WorkClass
from helios_migrate.facts import (
    ColumnFacts,
    DatabaseFacts,
    IndexFacts,
    ServerFacts,
    SessionFacts,
    Setting,
    TableFacts,
)
from helios_migrate.impact import (
    RiskLevel,
    estimate_plan,
    render_header,
    render_revision_header,
    tables_of_plan,
    to_json,
    to_markdown,
)
from helios_migrate.locks import LockMode
from helios_migrate.plan import Backfill, Phase, Plan, RetryPolicy, Step, TransactionMode
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion

GB = 1024**3
ORDERS = QualifiedName("orders", "public")
TP = Throughput(500e6, "calibrated", detail="test")


def facts(*, write_rate: float = 0.0, sessions: tuple[SessionFacts, ...] = (), heap: int = 20 * GB) -> DatabaseFacts:
    rows = heap // 100
    table = TableFacts(
        ORDERS, "r", heap + 6 * GB, heap, 6 * GB, 0, heap // 8192, float(rows), rows,
        indexes=(IndexFacts(QualifiedName("orders_pkey", "public"), 4 * GB, primary=True, unique=True),
                 IndexFacts(QualifiedName("orders_customer_idx", "public"), 2 * GB)),
        columns=(ColumnFacts("id", "bigint", True, 0.0, 8), ColumnFacts("customer_id", "integer", False, 0.0, 4),
                 ColumnFacts("note", "text", False, 0.4, 20)),
        write_rate=write_rate,
    )
    server = ServerFacts(PgVersion(16, 4), {
        "block_size": Setting("block_size", "8192"),
        "maintenance_work_mem": Setting("maintenance_work_mem", "65536", "kB"),
        "lock_timeout": Setting("lock_timeout", "0", "ms"),
        "wal_level": Setting("wal_level", "replica"),
    }, "7300000000000000001", "db:5432", "shop")
    return DatabaseFacts(server, (table,), sessions)


def step(sql: str, **kwargs: object) -> Step:
    return Step(sql, Phase.EXPAND, sql=(sql,), changes=tuple(changes_from_sql(sql)), **kwargs)  # type: ignore[arg-type]


def one(sql: str, f: DatabaseFacts | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    f = facts() if f is None else f
    return estimate_plan(Plan((step(sql, **kwargs),)), f, throughput=TP).steps[0]


def test_metadata_only_change_is_low() -> None:
    s = one("ALTER TABLE orders ADD COLUMN flag boolean")
    assert s.work is WorkClass.METADATA and s.lock is LockMode.ACCESS_EXCLUSIVE
    assert s.risk is RiskLevel.LOW
    assert s.duration is not None and s.duration.high_s < 0.1


def test_scan_under_access_exclusive_on_a_big_table_is_critical() -> None:
    s = one("ALTER TABLE orders ALTER COLUMN note SET NOT NULL")
    assert s.work is WorkClass.SCAN and s.blocks == "reads and writes"
    assert s.risk is RiskLevel.CRITICAL
    assert s.rows == 20 * GB // 100
    assert s.duration is not None and s.duration.expected_s > 30
    assert "blocks reads and writes on public.orders" in s.reasons[0].text


def test_validate_constraint_blocks_nobody() -> None:
    s = one("ALTER TABLE orders VALIDATE CONSTRAINT orders_note_check")
    assert s.lock is LockMode.SHARE_UPDATE_EXCLUSIVE and s.work is WorkClass.SCAN
    assert s.risk is RiskLevel.LOW


def test_rewrite_needs_disk_and_wal_and_is_critical() -> None:
    s = one("ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint")
    assert s.work is WorkClass.REWRITE and s.risk is RiskLevel.CRITICAL
    assert s.extra_disk_bytes == 26 * GB and s.wal_bytes == 26 * GB
    assert any("free disk" in r.text for r in s.reasons)


def test_plain_index_build_blocks_writes_concurrent_does_not() -> None:
    plain = one("CREATE INDEX orders_note_idx ON orders (note)")
    assert plain.blocks == "writes" and plain.risk is RiskLevel.CRITICAL
    conc = one("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note)", transaction=TransactionMode.AUTOCOMMIT)
    assert conc.work is WorkClass.INDEX_BUILD and conc.risk is RiskLevel.LOW
    assert conc.extra_disk_bytes > 0 and conc.wal_bytes > 0
    assert any("maintenance_work_mem" in n for n in conc.notes)


def test_old_transaction_makes_concurrent_build_wait() -> None:
    old = SessionFacts(4242, "reporting", "app", "active", 900.0, 900.0, "SELECT ...")
    s = one("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note)", facts(sessions=(old,)))
    assert s.risk is RiskLevel.MEDIUM
    assert s.lock_wait == ("pid 4242 (reporting, active, transaction open 15 min): create index "
                           "CONCURRENTLY waits until this transaction ends",)


def test_hot_table_and_lock_timeout() -> None:
    hot = facts(write_rate=800.0)
    bare = one("ALTER TABLE orders ADD COLUMN flag boolean", hot)
    assert bare.risk is RiskLevel.HIGH
    assert "800 writes/s" in bare.lock_wait[0]
    guarded = one("ALTER TABLE orders ADD COLUMN flag boolean", hot, transaction=TransactionMode.OWN,
                  retry=RetryPolicy(lock_timeout_ms=2000))
    assert guarded.risk is RiskLevel.MEDIUM


def test_backfill_counts_null_rows_only() -> None:
    b = Step("backfill orders.note", Phase.BACKFILL, transaction=TransactionMode.AUTOCOMMIT,
             backfill=Backfill(ORDERS, "note", "''", batch_size=10_000, pause_ms=50))
    s = estimate_plan(Plan((b,)), facts(heap=GB), throughput=TP).steps[0]
    assert s.work is WorkClass.ROW_WRITES and s.lock is LockMode.ROW_EXCLUSIVE
    assert s.rows == round(GB // 100 * 0.4)
    assert s.risk is RiskLevel.LOW
    assert tables_of_plan(Plan((b,))) == [ORDERS]


def test_offline_estimates_locks_only() -> None:
    plan = Plan((step("ALTER TABLE orders ADD COLUMN flag boolean"),
                 step("ALTER TABLE orders ALTER COLUMN note SET NOT NULL")))
    impact = estimate_plan(plan, None, PgVersion(15, 0, minor_known=False))
    meta, scan = impact.steps
    assert meta.risk is RiskLevel.LOW and scan.risk is RiskLevel.MEDIUM and scan.duration is None
    assert not impact.live


HEADER = """\
# Impact on PostgreSQL 16.4 (shop): risk CRITICAL, total 39 min-3.2 h
# #  step                                          lock            blocks        work         rows    size     time          risk
# 1  add column flag                               ACCESS EXCL     reads+writes  metadata     -       -        2-12 ms       low
# 2  index note                                    SHARE UPD EXCL  DDL only      index build  214.7M  28.0 GB  5-26 min      low
# 3  set not null                                  ACCESS EXCL     reads+writes  scan         214.7M  20.0 GB  29 s-2 min    critical
# 4  backfill note with a fairly long descriptio~  ROW EXCL        -             row writes   85.9M   8.0 GB   33 min-2.7 h  medium
# 3: [critical] blocks reads and writes on public.orders for ~29 s-2 min (scan)
# 4: [medium] runs ~33 min-2.7 h without blocking the application: plan a window for it
# note: invalid index public.orders_old_idx on public.orders (left by a failed CREATE INDEX CONCURRENTLY?): it slows writes and is never used; drop it with DROP INDEX CONCURRENTLY public.orders_old_idx
"""


def header_plan() -> Plan:
    return Plan((
        Step("add column flag", Phase.EXPAND, changes=tuple(changes_from_sql("ALTER TABLE orders ADD COLUMN flag boolean"))),
        Step("index note", Phase.EXPAND, transaction=TransactionMode.AUTOCOMMIT,
             changes=tuple(changes_from_sql("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note)"))),
        Step("set not null", Phase.CONTRACT,
             changes=tuple(changes_from_sql("ALTER TABLE orders ALTER COLUMN note SET NOT NULL"))),
        Step("backfill note with a fairly long description of what it does", Phase.BACKFILL,
             backfill=Backfill(ORDERS, "note", "''")),
    ))


def header_facts() -> DatabaseFacts:
    f = facts()
    t = f.tables[0]
    from dataclasses import replace

    invalid = IndexFacts(QualifiedName("orders_old_idx", "public"), 1024, valid=False)
    return replace(f, tables=(replace(t, indexes=(*t.indexes, invalid)),))


def test_revision_header_snapshot() -> None:
    impact = estimate_plan(header_plan(), header_facts(), throughput=TP)
    text = render_revision_header(impact)
    assert text == HEADER, text
    assert render_header is render_revision_header
    assert render_revision_header(impact, prefix="").startswith("Impact on PostgreSQL 16.4")


def test_json_and_markdown() -> None:
    impact = estimate_plan(header_plan(), header_facts(), throughput=TP)
    data = json.loads(to_json(impact))
    assert data["risk"] == "critical" and len(data["steps"]) == 4
    assert data["steps"][2]["lock"] == "ACCESS EXCLUSIVE" and data["steps"][2]["work"] == "scan"
    assert data["throughput"]["source"] == "calibrated"
    md = to_markdown(impact)
    assert "| 3 | set not null | ACCESS EXCLUSIVE | reads and writes | scan |" in md
    assert "- step 3 (critical): blocks reads and writes" in md


def test_a_step_writing_more_wal_than_max_wal_size_says_checkpoints_will_come() -> None:
    f = facts()
    server = f.server
    settings = {**server.settings, "max_wal_size": Setting("max_wal_size", "1024", "MB")}
    big = DatabaseFacts(
        ServerFacts(server.version, settings, server.system_identifier, server.host, server.database),
        f.tables, f.sessions,
    )
    s = one("ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint", big)
    note = next(n for n in s.notes if "max_wal_size" in n)
    assert note.startswith("writes ~26.0 GB of WAL, 26.0 x max_wal_size (1.0 GB)"), note
    assert "full page" in note
    small = one("ALTER TABLE orders ADD COLUMN flag boolean", big)
    assert not [n for n in small.notes if "max_wal_size" in n]
    assert not [n for n in one("ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint").notes
                if "max_wal_size" in n], "no note without the setting"
