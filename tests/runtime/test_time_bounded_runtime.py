"""The runtime bounds every step in time, on a real server (PostgreSQL 15 and 18): batches sized by
time, throttling on a lag query, the lock-queue guard, and keys of every shape.

The runtime functions are called as a revision calls them, with Alembic's ``op`` on a real
connection; the settings a project would put in ``[tool.helios-migrate]`` are given directly.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
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
from helios_migrate.throttle import BatchSizer

FAST = RuntimeSettings(max_replica_lag=None, lock_guard_max_wait="20s", lock_guard_min_age="100ms")


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _use(monkeypatch: pytest.MonkeyPatch, settings: RuntimeSettings) -> None:
    monkeypatch.setattr(runtime, "settings", lambda: settings)


def _sql(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchone() if cur.description else None


def _url(op: Any) -> str:
    return op.get_bind().engine.url.render_as_string(hide_password=False).replace("+psycopg", "")


def test_batch_sizer_converges_to_the_target_and_shrinks_after_a_slow_batch() -> None:
    """A server doing 100,000 rows/s: 20 ms batches are 2,000 rows; the first batch is small and
    growth is at most twofold per batch; a batch that waited is followed by a smaller one."""
    sizer = BatchSizer(target_ms=20, floor=100, ceiling=50_000)
    sizes = []
    for _ in range(12):
        sizes.append(sizer.size)
        sizer.record(sizer.size, sizer.size / 100_000)
    assert sizes[0] == 100
    assert all(b <= 2 * a for a, b in itertools.pairwise(sizes))
    assert 1800 <= sizer.size <= 2200
    sizer.record(sizer.size, 0.5)  # a lock wait: 0.5 s for one batch
    assert sizer.size < 200
    assert BatchSizer(target_ms=0, ceiling=10_000).size == 10_000  # 0: fixed batches


def test_backfill_batches_converge_to_the_target_time(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=15, backfill_min_batch=50))
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY, v text, w text); "
              "INSERT INTO t (id, v) SELECT g, md5(g::text) FROM generate_series(1, 60000) g")
    seen: list[tuple[int, int, float]] = []
    record = BatchSizer.record

    def spy(self: BatchSizer, rows: int, seconds: float) -> None:
        seen.append((self.size, rows, seconds))
        record(self, rows, seconds)

    monkeypatch.setattr(BatchSizer, "record", spy)
    runtime.backfill(op, "t", "w", "upper(v)", batch_size=50_000, pause_ms=0)
    assert _sql(url, "SELECT count(*) FROM t WHERE w IS NULL OR w <> upper(v)")[0] == 0
    assert seen[0][0] == 50, "the first batch is the smallest"
    later = sorted(s for _, _, s in seen[len(seen) // 2:])
    median = later[len(later) // 2]
    assert 0.004 <= median <= 0.06, f"batches took {later}"
    assert max(size for size, _, _ in seen) > 500, "batches grew from the first one"


def test_backfill_pauses_while_the_lag_query_says_so(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(op)
    _sql(url, "CREATE TABLE lag (seconds float); INSERT INTO lag VALUES (30); "
              "CREATE TABLE t (id bigint PRIMARY KEY, v int); INSERT INTO t SELECT g FROM generate_series(1, 3000) g")
    _use(monkeypatch, dataclasses.replace(FAST, max_replica_lag="5s", replica_lag_sql="SELECT seconds FROM lag"))
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runtime.backfill(op, "t", "v", "id * 2", pause_ms=0)
        except BaseException as exc:  # reported below
            errors.append(exc)
        done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(1.5)
    assert _sql(url, "SELECT count(v) FROM t")[0] == 0, "no batch runs while the replica lags"
    assert not done.is_set()
    _sql(url, "UPDATE lag SET seconds = 0.5")
    assert done.wait(30), "the backfill resumes once the lag is below max_replica_lag"
    assert not errors, errors
    assert _sql(url, "SELECT count(*) FROM t WHERE v = id * 2")[0] == 3000


def test_critical_load_stops_cleanly_and_a_rerun_resumes(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(op)
    _sql(url, "CREATE TABLE load (n float); INSERT INTO load VALUES (50); "
              "CREATE TABLE t (id bigint PRIMARY KEY, v int); INSERT INTO t SELECT g FROM generate_series(1, 2000) g")
    _use(monkeypatch, dataclasses.replace(FAST, max_load=10, critical_load=20, load_sql="SELECT n FROM load"))
    with pytest.raises(runtime.StepFailed, match=r"critical_load.*run the upgrade again to resume"):
        runtime.backfill(op, "t", "v", "id", pause_ms=0)
    _sql(url, "UPDATE load SET n = 1")
    runtime.backfill(op, "t", "v", "id", pause_ms=0)
    assert _sql(url, "SELECT count(*) FROM t WHERE v = id")[0] == 2000


@pytest.mark.parametrize("interval, batches_before_pause", [("0s", 1), ("1h", 5)])
def test_throttle_interval_says_how_long_a_reading_is_trusted(
    op: Any, monkeypatch: pytest.MonkeyPatch, interval: str, batches_before_pause: int
) -> None:
    """The load is the number of rows filled so far: with ``throttle_interval = "0s"`` it is read
    before every batch, so the second batch waits; with a long interval the first reading (0) is
    trusted and every batch runs.  Either way the backfill stops cleanly at critical_load."""
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY, v int); "
              "INSERT INTO t SELECT g FROM generate_series(1, 500) g")
    settings = dataclasses.replace(
        FAST, backfill_target_ms=0, max_load=0, critical_load=0, throttle_interval=interval,
        load_sql="SELECT count(v) FROM t",
    )
    _use(monkeypatch, settings)
    if batches_before_pause == 1:
        with pytest.raises(runtime.StepFailed, match="critical_load"):
            runtime.backfill(op, "t", "v", "id", batch_size=100, pause_ms=0)
        assert _sql(url, "SELECT count(v) FROM t")[0] == 100
    else:
        runtime.backfill(op, "t", "v", "id", batch_size=100, pause_ms=0)
        assert _sql(url, "SELECT count(v) FROM t")[0] == 500


def test_guard_waits_behind_an_open_transaction_instead_of_queueing(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle-in-transaction session holds ACCESS SHARE on t: the step does not request its
    ACCESS EXCLUSIVE lock (nobody queues behind it) until that transaction ends."""
    _use(monkeypatch, FAST)
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1)")
    holder = psycopg.connect(url, application_name="long-report")
    holder.execute("SELECT * FROM t")  # transaction open, idle
    time.sleep(0.3)
    done = threading.Event()

    def run() -> None:
        runtime.run_in_own_transaction(op, ["ALTER TABLE t ADD COLUMN flag boolean"], lock_timeout="5s")
        done.set()

    caplog.set_level(logging.INFO, logger="alembic.helios.runtime")
    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        time.sleep(1.5)
        waiting = _sql(url, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 't'::regclass")[0]
        assert waiting == 0, "the step joined the lock queue"
        # A reader arriving now is not blocked by a queued ACCESS EXCLUSIVE request.
        began = time.monotonic()
        _sql(url, "SELECT count(*) FROM t")
        assert time.monotonic() - began < 0.5
        assert not done.is_set()
    finally:
        holder.commit()
        holder.close()
    assert done.wait(20), "the step runs once the transaction ends"
    assert _sql(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'flag'")[0] == 1
    assert "long-report" in caplog.text and "idle in transaction" in caplog.text


@pytest.mark.parametrize(
    ("ddl", "key"),
    [
        ("CREATE TABLE t (a int, b int, v int, PRIMARY KEY (a, b)); "
         "INSERT INTO t SELECT g % 7, g, NULL FROM generate_series(1, 5000) g", ("a", "b")),
        ("CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int, v int); "
         "INSERT INTO t (n) SELECT g FROM generate_series(1, 5000) g", ("id",)),
        ("CREATE TABLE t (code text NOT NULL, n int, v int); CREATE UNIQUE INDEX t_code ON t (code); "
         "INSERT INTO t SELECT 'c' || g, g FROM generate_series(1, 5000) g", ("code",)),
    ],
    ids=["composite", "uuid", "unique-not-null"],
)
def test_backfill_walks_keys_of_every_shape(op: Any, monkeypatch: pytest.MonkeyPatch, ddl: str, key: tuple[str, ...]) -> None:
    """Small batches (a few hundred rows) cross many key boundaries; every row is filled once."""
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=2, backfill_min_batch=37))
    url = _url(op)
    _sql(url, ddl)
    runtime.backfill(op, "t", "v", "1", key=key, batch_size=400, pause_ms=0)
    assert _sql(url, "SELECT count(*), count(v) FROM t") == (5000, 5000)
