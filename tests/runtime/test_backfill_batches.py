"""How a backfill batch runs, on a real server (PostgreSQL 15 and 18): each batch is one range of
the key in a transaction of its own, committed without waiting for its WAL flush, under the step's
lock_timeout; the session's settings are put back afterwards, also when a batch fails; the
throttle does not spend a query on every batch; the offline ``DO`` loop sizes its batches by time
like the online one.

Each batch's transaction is observed from the data itself: the backfilled expression records
``txid_current()`` and the settings the row was written under.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helios_migrate import runtime
from helios_migrate.config import RuntimeSettings

FAST = RuntimeSettings(max_replica_lag=None, lock_guard_max_wait="20s", lock_guard_min_age="100ms")

WITNESS = (
    "txid_current()::text || ':' || current_setting('synchronous_commit') || ':' || "
    "current_setting('lock_timeout')"
)
"""What a backfilled row records: its transaction and the settings its batch ran under (the
colons also prove that the user's text is not read as bind parameters)."""

PREPARED_WITNESS = (
    "txid_current()::text || ':' || (SELECT count(*) FROM pg_prepared_statements "
    "WHERE position('helios_backfill_upto' in statement) > 0)::text"
)
"""What a backfilled row records to show prepared statements: its transaction, and how many
prepared backfill statements its batch's session had."""


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _use(monkeypatch: pytest.MonkeyPatch, settings: RuntimeSettings) -> None:
    monkeypatch.setattr(runtime, "settings", lambda: settings)


def _url(op: Any) -> str:
    return op.get_bind().engine.url.render_as_string(hide_password=False).replace("+psycopg", "")


def _rows(url: str, sql: str) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _batches(url: str) -> list[tuple[int, int, int, str, str]]:
    """(first id, last id, rows, synchronous_commit, lock_timeout) of each batch, in key order."""
    return [
        tuple(r)
        for r in _rows(
            url,
            "SELECT min(id), max(id), count(*), min(split_part(w, ':', 2)), min(split_part(w, ':', 3)) "
            "FROM t GROUP BY split_part(w, ':', 1) ORDER BY min(id)",
        )
    ]


def _settings(op: Any, set_first: bool = False) -> tuple[str, str]:
    """synchronous_commit and lock_timeout of the migration's own session (first set to values of
    its own, as an env.py could, when ``set_first``; the test servers run without durability, so
    their default is ``off`` already)."""
    bind = op.get_bind()
    if set_first:
        bind.exec_driver_sql("SET synchronous_commit = local; SET lock_timeout = '7s'")
        bind.commit()
    found = bind.exec_driver_sql(
        "SELECT current_setting('synchronous_commit'), current_setting('lock_timeout')"
    ).one()
    bind.rollback()  # as outside a migration: no transaction left open
    return (str(found[0]), str(found[1]))


def test_each_batch_is_one_key_range_in_its_own_transaction_without_a_flush_wait(
    op: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=5, backfill_min_batch=40))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g")
    assert _settings(op, set_first=True) == ("local", "7s")

    runtime.backfill(op, "t", "w", WITNESS, batch_size=3000, pause_ms=0, lock_timeout="3s")

    batches = _batches(url)
    assert sum(b[2] for b in batches) == 20000, "every row was filled, once"
    assert len(batches) > 3
    assert batches[0][2] == 40, "the first batch is backfill_min_batch rows"
    assert max(b[2] for b in batches) <= 3000, "no batch is larger than batch_size"
    assert all(a[1] < b[0] for a, b in itertools.pairwise(batches)), "ranges do not overlap"
    assert {(b[3], b[4]) for b in batches} == {("off", "3s")}, "each batch: no flush wait, the step's lock_timeout"
    assert _settings(op) == ("local", "7s"), "the session's settings are put back"


def test_every_batch_reuses_one_statement_prepared_on_the_server(
    op: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of changing sizes send the same text (the size is a parameter), so the driver
    prepares it once and each later batch skips parsing and analysing it.  Each row records the
    prepared backfill statements its batch's session had while the batch ran."""
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=2, backfill_min_batch=20))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g")
    witness = PREPARED_WITNESS

    runtime.backfill(op, "t", "w", witness, batch_size=1_000_000, pause_ms=0)

    batches = _rows(
        url,
        "SELECT count(*), min(split_part(w, ':', 2))::int, max(split_part(w, ':', 2))::int "
        "FROM t GROUP BY split_part(w, ':', 1) ORDER BY min(id)",
    )
    assert sum(b[0] for b in batches) == 20000
    assert len({b[0] for b in batches}) > 3, "batch sizes varied"
    assert len(batches) > 20
    # The driver prepares a statement on its 5th run: from then on every batch but the last
    # (open-ended) one runs the one prepared statement, whatever its size.
    later = batches[7:-1]
    assert len({b[0] for b in later}) > 3, "sizes set by time, not one size repeated"
    assert all(b[1] == b[2] == 1 for b in later), batches


def test_a_cancelled_batch_keeps_the_prepared_statement(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch cancelled at the cap (here: it waits on a row an application transaction holds,
    released once the cancellation is logged) was its own autocommit transaction; nothing is
    rolled back after it, so the driver keeps the prepared batch statement and every later batch
    still runs it (a ROLLBACK would make the driver deallocate it and parse the next batches
    again)."""
    _use(monkeypatch, dataclasses.replace(
        FAST, backfill_target_ms=2, backfill_min_batch=20, backfill_cancel_wait_max="40ms",
    ))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g")
    witness = PREPARED_WITNESS
    holder = psycopg.connect(url)
    holder.execute("SELECT * FROM t WHERE id = 15000 FOR UPDATE")
    cancelled: list[str] = []

    class ReleaseOnCancel(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "cancelled" in record.getMessage() and not cancelled:
                cancelled.append(record.getMessage())
                holder.rollback()

    caplog.set_level(logging.INFO, logger=runtime.log.name)
    handler = ReleaseOnCancel()
    runtime.log.addHandler(handler)
    try:
        runtime.backfill(op, "t", "w", witness, batch_size=1_000_000, pause_ms=0)
    finally:
        runtime.log.removeHandler(handler)
        holder.rollback()
        holder.close()

    assert cancelled, "a batch waited on the held row and was cancelled"
    batches = _rows(
        url,
        "SELECT count(*), min(split_part(w, ':', 2))::int, max(split_part(w, ':', 2))::int, "
        "min(id) FROM t GROUP BY split_part(w, ':', 1) ORDER BY min(id)",
    )
    assert sum(b[0] for b in batches) == 20000
    after = [b for b in batches if b[3] >= 15000][:-1]
    assert after, batches
    assert all(b[1] == b[2] == 1 for b in after), batches


def test_the_first_batch_is_planned_as_a_small_range_of_the_key(op: Any) -> None:
    """The first batch has no previous upper end: with only ``key <= (its upper end)``, a value
    the planner cannot see, it estimated a third of the table, enough to choose a full scan on a
    table whose rows are not in key order.  Its range has a lower end too, so the estimate is a
    small range of the key, like every later batch's."""
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, n int, w text); "
               "INSERT INTO t (id, n) SELECT g, g FROM generate_series(1, 200000) g ORDER BY random(); "
               "ANALYZE t")
    ranges = runtime._KeyRanges("t", "w", "n::text", "w IS DISTINCT FROM n::text", ("id",))
    estimates = []
    for after in (False, True):
        sql = ranges.online_batch(after)
        bind = op.get_bind()
        plan = bind.execute(sa.text("EXPLAIN (FORMAT JSON) " + sql.text), {"n": 100, "a0": 1000}).scalar()
        bind.rollback()

        def updates(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if node.get("Node Type") == "ModifyTable":
                yield node
            for child in node.get("Plans", []):
                yield from updates(child)

        [update] = list(updates(plan[0]["Plan"]))
        estimates.append(update["Plan Rows"])
    assert all(e <= 2000 for e in estimates), f"estimated rows per batch (first, later): {estimates}"


def test_the_pauses_add_up_to_the_nice_ratio_when_sleeps_overrun(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Batches of a few ms owe pauses of a ms or two; a sleep that long lasts several ms on a busy
    machine (simulated: every sleep overruns by 4 ms).  The pauses are gathered into sleeps of at
    least 10 ms and an overrun is taken off the next one, so the backfill pauses about
    ``backfill_nice_ratio`` x its working time, not several times that."""
    _use(monkeypatch, dataclasses.replace(
        FAST, backfill_target_ms=3, backfill_min_batch=50, backfill_nice_ratio=0.5,
    ))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, v int); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 30000) g")
    real_sleep = time.sleep
    monkeypatch.setattr(runtime.time, "sleep", lambda s: real_sleep(s + 0.004))
    caplog.set_level(logging.INFO, logger="alembic.helios.runtime")

    runtime.backfill(op, "t", "v", "id % 7", batch_size=1_000_000)

    found = re.search(r"(\d+) rows in (\d+) batches, ([\d.]+)s .* paused ([\d.]+)s between batches", caplog.text)
    assert found, caplog.text
    rows, batches, elapsed, paused = int(found[1]), int(found[2]), float(found[3]), float(found[4])
    # How many batches a 3 ms target gives depends on the machine's speed: enough for many pauses.
    assert rows == 30000 and batches >= 10
    working = elapsed - paused
    assert paused <= 0.5 * working + 0.1, (paused, working, batches)
    assert paused >= 0.2 * working - 0.1, "the pauses still happen"


def test_a_batch_that_fails_keeps_the_batches_before_it_and_puts_the_settings_back(
    op: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=5, backfill_min_batch=50))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 5000) g")
    assert _settings(op, set_first=True) == ("local", "7s")
    with pytest.raises(sa.exc.DBAPIError, match="division by zero"):
        runtime.backfill(op, "t", "w", "(1 / (4000 - id))::text", batch_size=500, pause_ms=0)
    done = _rows(url, "SELECT count(w), max(id) FILTER (WHERE w IS NOT NULL) FROM t")[0]
    assert done[0] > 0 and done[1] < 4000, "the batches before the failing one are kept"
    assert _settings(op) == ("local", "7s"), "the session's settings are put back"
    # The failure left the connection usable: fixing the data and running again finishes the job.
    _rows(url, "DELETE FROM t WHERE id = 4000")
    runtime.backfill(op, "t", "w", "(1 / (4000 - id))::text", batch_size=500, pause_ms=0)
    assert _rows(url, "SELECT count(*) FROM t WHERE w IS NULL")[0][0] == 0


def test_the_throttle_does_not_query_the_server_before_every_batch(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The load query counts its own calls (a sequence): with batches of a few ms it runs about
    once a second, not once per batch."""
    url = _url(op)
    _rows(url, "CREATE SEQUENCE probes; CREATE TABLE t (id bigint PRIMARY KEY, v int); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 60000) g")
    _use(monkeypatch, dataclasses.replace(
        FAST, backfill_target_ms=3, backfill_min_batch=50, max_load=1000,
        load_sql="SELECT nextval('probes') * 0",
    ))
    caplog.set_level(logging.INFO, logger="alembic.helios.runtime")
    began = time.monotonic()
    runtime.backfill(op, "t", "v", "id", batch_size=500, pause_ms=0)
    elapsed = time.monotonic() - began
    found = re.search(r"(\d+) rows in (\d+) batches", caplog.text)
    assert found and int(found[1]) == 60000
    batches = int(found[2])
    probes = _rows(url, "SELECT last_value FROM probes")[0][0]
    assert batches >= 100
    assert probes <= elapsed + 2, f"{probes} load queries for {batches} batches in {elapsed:.1f}s"


def _offline_sql(monkeypatch: pytest.MonkeyPatch, settings: RuntimeSettings, **kwargs: Any) -> str:
    _use(monkeypatch, settings)
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer})
    runtime.backfill(Operations(context), "t", "w", WITNESS, **kwargs)
    return buffer.getvalue()


def _apply(url: str, script: str) -> None:
    """Apply an offline script as psql does (autocommit), statement by statement."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in script.split(";\n\n"):
            if statement.strip() and statement.strip() not in ("BEGIN", "COMMIT"):
                conn.execute(statement.encode())


def test_the_offline_loop_sizes_its_batches_by_time(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 30000) g")
    script = _offline_sql(
        monkeypatch, dataclasses.replace(FAST, backfill_target_ms=5, backfill_min_batch=30, backfill_nice_ratio=0.1),
        batch_size=2000, pause_ms=50, lock_timeout="4s",
    )
    assert "0.1 * helios_ms" in script, "the pause is proportional to the batch's time, as online"
    _apply(url, script)
    batches = _batches(url)
    assert sum(b[2] for b in batches) == 30000
    assert batches[0][2] == 30, "the first batch is backfill_min_batch rows"
    sizes = [b[2] for b in batches[:-1]]
    assert len(set(sizes)) > 2, f"batch sizes follow the time they take: {sizes}"
    assert max(sizes) <= 2000
    assert all(b <= 2 * a for a, b in itertools.pairwise(sizes)), "at most doubling"
    assert {(b[3], b[4]) for b in batches} == {("off", "4s")}


def test_the_offline_loop_with_fixed_batches(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint, k text, w text, PRIMARY KEY (id, k)); "
               "INSERT INTO t SELECT g % 10, 'k:' || g, NULL FROM generate_series(1, 2500) g")
    script = _offline_sql(
        monkeypatch, dataclasses.replace(FAST, backfill_target_ms=0, backfill_pause="fixed"),
        key=("id", "k"), batch_size=300, pause_ms=0,
    )
    assert "pg_sleep" not in script
    _apply(url, script)
    sizes = [r[0] for r in _rows(url, "SELECT count(*) FROM t GROUP BY split_part(w, ':', 1) ORDER BY min(id), min(k)")]
    assert sum(sizes) == 2500
    assert sizes[:-1] == [300] * (len(sizes) - 1) and sizes[-1] <= 300


def test_a_batch_waiting_behind_an_application_row_is_cancelled_instead_of_holding_writers(
    op: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application transaction holds row 3000. The batch that reaches it waits, holding the
    rows it already updated: a writer of row 2999 would wait behind it up to lock_timeout (5 s
    here). The batch is cancelled at backfill_max_batch_ms (1.5 x backfill_target_ms, at least 25 ms)
    instead, and tried again smaller;
    after 20 cancellations in a row the step stops, resumable, saying why and naming the session
    that holds the table."""
    import threading

    _use(monkeypatch, dataclasses.replace(
        FAST, backfill_target_ms=20, backfill_min_batch=50, backfill_cancel_wait_max="40ms",
    ))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, n int, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 6000) g")
    holder = psycopg.connect(url, application_name="app-holder")
    holder.execute("SELECT * FROM t WHERE id = 3000 FOR UPDATE")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runtime.backfill(op, "t", "w", "'x'", batch_size=2000, pause_ms=0, lock_timeout="5s")
        except BaseException as exc:  # checked below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    waits: list[float] = []
    try:
        worker.start()
        with psycopg.connect(url, autocommit=True) as writer:
            while worker.is_alive() and len(waits) < 400:
                began = time.monotonic()
                writer.execute("UPDATE t SET n = 1 WHERE id = 2999")
                waits.append(time.monotonic() - began)
                time.sleep(0.005)
        worker.join(30)
    finally:
        holder.rollback()
        holder.close()
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], runtime.StepFailed), errors
    assert "cancelled" in str(errors[0]) and "run the upgrade again to resume" in str(errors[0])
    assert re.search(r"sessions holding t: pid \d+ \(app-holder, idle in transaction, transaction", str(errors[0])), (
        "the error names the session the batches waited on"
    )
    assert max(waits) < 1.0, f"a writer waited {max(waits):.2f}s behind a batch"
    assert _rows(url, "SELECT count(w) FROM t")[0][0] >= 2900, "the batches before row 3000 are kept"
    runtime.backfill(op, "t", "w", "'x'", batch_size=2000, pause_ms=0)
    assert _rows(url, "SELECT count(*) FROM t WHERE w IS NULL")[0][0] == 0


def test_the_row_estimate_is_the_one_formula_and_sums_the_partitions(op: Any) -> None:
    """The total a backfill's progress and its ANALYZE threshold start from: the planner's estimate
    (``helios_migrate.facts.row_estimate_sql``), also for a table never analyzed, summed over the
    leaves of a partitioned table; ``None`` for a table that does not exist."""
    _rows(
        _url(op),
        "CREATE TABLE plain (id int); INSERT INTO plain SELECT generate_series(1, 5000); ANALYZE plain;"
        "CREATE TABLE fresh (id int); INSERT INTO fresh SELECT generate_series(1, 5000);"
        "CREATE TABLE parts (id int) PARTITION BY RANGE (id);"
        "CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (1) TO (3001);"
        "CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (3001) TO (6001);"
        "INSERT INTO parts SELECT generate_series(1, 6000); ANALYZE parts_a, parts_b",
    )
    assert runtime._row_estimate(op, "plain") == 5000
    fresh = runtime._row_estimate(op, "fresh")
    assert fresh is not None and 2500 < fresh < 10000  # from the column widths, or analyzed since
    assert runtime._row_estimate(op, "parts") == 6000
    assert runtime._row_estimate(op, "missing") is None
    op.get_bind().rollback()


def test_rows_the_expression_leaves_empty_are_counted_by_the_batches_not_by_a_final_scan(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each batch counts the rows it left still to do (``RETURNING`` the pending condition on the
    updated row), so the warning names them without reading the whole table again afterwards."""
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=5, backfill_min_batch=50))
    url = _url(op)
    _rows(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
               "INSERT INTO t (id) SELECT g FROM generate_series(1, 5000) g")
    queries: list[str] = []
    scalar = runtime._scalar

    def spy(op_: Any, sql: str) -> Any:
        queries.append(sql)
        return scalar(op_, sql)

    monkeypatch.setattr(runtime, "_scalar", spy)
    caplog.set_level(logging.INFO, logger="alembic.helios.runtime")
    runtime.backfill(op, "t", "w", "CASE WHEN id % 10 = 0 THEN NULL ELSE 'x:' || id END", batch_size=700, pause_ms=0)
    assert _rows(url, "SELECT count(*) FILTER (WHERE w IS NULL), count(*) FROM t")[0] == (500, 5000)
    assert "500 rows still match" in caplog.text
    assert not [q for q in queries if "count(*)" in q], queries
    caplog.clear()
    runtime.backfill(op, "t", "w", "'y'", batch_size=700, pause_ms=0)  # a re-run fills the rest
    assert "still match" not in caplog.text
    assert _rows(url, "SELECT count(*) FROM t WHERE w = 'y'")[0][0] == 500
