"""The constants that bound a running migration in time are ``[tool.helios-migrate]`` settings:
the longest a backfill batch may hold its row locks (``backfill_max_batch_ms``), how many
cancelled batches in a row stop it, how fast batches grow, the shortest pause, and how often the
throttle and the lock-queue guard look again while they wait.  Each is read from a real
``pyproject.toml`` and shown to change what happens on a real server (PostgreSQL 15 and 18).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from helios_migrate import runtime
from helios_migrate.config import ConfigError, RuntimeSettings, load_config
from helios_migrate.lockguard import wait_for_lock_queue
from helios_migrate.throttle import BatchSizer, Throttle
from helios_migrate.versions import PgVersion

FAST = RuntimeSettings(max_replica_lag=None, lock_guard_max_wait="20s", lock_guard_min_age="100ms")


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


def _sql(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchone() if cur.description else None


def _settings(tmp_path: Path, body: str) -> RuntimeSettings:
    (tmp_path / "pyproject.toml").write_text("[tool.helios-migrate]\n" + body)
    return load_config(start=tmp_path).runtime


def test_the_settings_are_read_from_pyproject_with_documented_defaults(tmp_path: Path) -> None:
    defaults = _settings(tmp_path, "")
    assert (defaults.backfill_target_ms, defaults.backfill_max_batch_ms) == (15, None)
    assert runtime._batch_cap_ms(defaults, None) == 25, "default cap: 1.5 x target, at least 25 ms"
    assert runtime._batch_cap_ms(dataclasses.replace(defaults, backfill_target_ms=100), None) == 150
    assert runtime._batch_cap_ms(dataclasses.replace(defaults, backfill_target_ms=0), None) is None
    read = _settings(
        tmp_path,
        "backfill_target_ms = 25\nbackfill_max_batch_ms = 45\nbackfill_max_cancelled = 3\n"
        "backfill_max_growth = 1.5\nbackfill_min_pause_ms = 0\nthrottle_poll_min = \"50ms\"\n"
        "throttle_poll_max = \"300ms\"\nlock_guard_poll_min = 20\nlock_guard_poll_max = \"200ms\"\n",
    )
    assert (read.backfill_target_ms, read.backfill_max_batch_ms, read.backfill_max_cancelled) == (25, 45, 3)
    assert (read.backfill_max_growth, read.backfill_min_pause_ms) == (1.5, 0)
    assert (read.throttle_poll_min, read.throttle_poll_max) == ("50ms", "300ms")
    assert (read.lock_guard_poll_min, read.lock_guard_poll_max) == ("20ms", "200ms")
    assert runtime._batch_cap_ms(read, None) == 45
    assert runtime._batch_cap_ms(read, "30ms") == 30, "never more than the step's statement_timeout"
    assert runtime._batch_cap_ms(dataclasses.replace(read, backfill_max_batch_ms=0), None) is None


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("backfill_target_ms = 50\nbackfill_max_batch_ms = 40\n", "backfill_max_batch_ms"),
        ("backfill_max_batch_ms = 15\n", "backfill_max_batch_ms"),  # the default target is 15
        ("backfill_max_growth = 0.5\n", "backfill_max_growth"),
        ("backfill_max_cancelled = 0\n", "backfill_max_cancelled"),
        ("lock_guard_poll_max = \"soon\"\n", "lock_guard_poll_max"),
    ],
)
def test_a_setting_that_cannot_bound_anything_is_refused_naming_it(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        _settings(tmp_path, body)


def test_a_writer_waits_at_most_backfill_max_batch_ms_behind_a_batch(
    op: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An application transaction holds row 3000; the batch that reaches it waits for it while
    holding the rows it already updated.  It is cancelled at ``backfill_max_batch_ms`` (300 ms
    here), so a writer of row 2999 never waits much longer than that; the third cancellation in a row
    (more than ``backfill_max_cancelled``, 2) stops the step, resumable."""
    _use(monkeypatch, dataclasses.replace(
        FAST, backfill_target_ms=20, backfill_max_batch_ms=300, backfill_max_cancelled=2, backfill_min_batch=50,
    ))
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY, n int, w text); "
              "INSERT INTO t (id) SELECT g FROM generate_series(1, 6000) g")
    holder = psycopg.connect(url)
    holder.execute("SELECT * FROM t WHERE id = 3000 FOR UPDATE")
    errors: list[BaseException] = []
    caplog.set_level(logging.INFO, logger="alembic.helios.runtime")

    def run() -> None:
        try:
            runtime.backfill(op, "t", "w", "'x'", batch_size=2000, pause_ms=0, lock_timeout="5s")
        except BaseException as exc:  # checked below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    waits: list[float] = []
    started = time.monotonic()
    try:
        worker.start()
        with psycopg.connect(url, autocommit=True) as writer:
            while worker.is_alive() and len(waits) < 400:
                began = time.monotonic()
                writer.execute("UPDATE t SET n = 1 WHERE id = 2999")
                waits.append(time.monotonic() - began)
                time.sleep(0.005)
        worker.join(30)
        took = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert len(errors) == 1 and isinstance(errors[0], runtime.StepFailed), errors
    assert "3 batches in a row ran past 300 ms" in str(errors[0])
    assert 0.9 <= took < 5, "three batches waited 300 ms each (not the 25 ms default, not lock_timeout)"
    assert "ran past 300 ms: cancelled" in caplog.text
    assert max(waits) < 0.3 + 0.4, f"a writer waited {max(waits):.2f}s behind a batch"


def test_batches_grow_at_most_backfill_max_growth(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sizer = BatchSizer(target_ms=20, floor=100, ceiling=50_000, growth=1.5)
    sizes = []
    for _ in range(15):
        sizes.append(sizer.size)
        sizer.record(sizer.size, sizer.size / 100_000)
    assert all(b <= 1.5 * a for a, b in itertools.pairwise(sizes))
    assert 1800 <= sizer.size <= 2200, sizes
    # Offline, the DO loop grows by the same factor.
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g")
    _use(monkeypatch, dataclasses.replace(FAST, backfill_target_ms=50, backfill_min_batch=20, backfill_max_growth=1.5))
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer})
    runtime.backfill(Operations(context), "t", "w", "txid_current()::text", batch_size=5000, pause_ms=0)
    script = buffer.getvalue()
    assert "(1.5 * helios_n)::integer" in script
    with psycopg.connect(url, autocommit=True) as conn:  # as psql applies it
        for statement in script.split(";\n\n"):
            if statement.strip() and statement.strip() not in ("BEGIN", "COMMIT"):
                conn.execute(statement.encode())
        sizes = [r[0] for r in conn.execute("SELECT count(*) FROM t GROUP BY w ORDER BY min(id)").fetchall()]
    assert sum(sizes) == 20000 and sizes[0] == 20
    assert all(b <= 1.5 * a + 1 for a, b in itertools.pairwise(sizes[:-1])), sizes


def test_the_guard_looks_again_at_the_configured_intervals(fresh_db: str) -> None:
    """A session idle in transaction holds ACCESS SHARE on t: the guard waits between looks,
    ``lock_guard_poll_min`` first, 1.5x longer each time up to ``lock_guard_poll_max``, and lets the
    step go once that transaction ends."""
    _sql(fresh_db, "CREATE TABLE t (id int)")
    holder = psycopg.connect(fresh_db)
    holder.execute("SELECT * FROM t")
    time.sleep(0.2)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 8:
            holder.commit()

    settings = dataclasses.replace(FAST, lock_guard_min_age="100ms", lock_guard_poll_min="20ms", lock_guard_poll_max="60ms")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        version = PgVersion.parse(int(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]

        def query(sql: str) -> list[Any]:
            return list(conn.execute(sql).fetchall())

        waited = wait_for_lock_queue(query, ["ALTER TABLE t ADD COLUMN c int"], version, settings, "test", sleep=sleep)
    holder.close()
    assert len(slept) == 8, "it looked until the transaction ended, and no longer"
    assert slept[:4] == pytest.approx([0.02, 0.03, 0.045, 0.06])
    assert slept[3:] == pytest.approx([0.06] * 5)
    assert waited == pytest.approx(sum(slept))


def test_the_throttle_checks_again_at_the_configured_intervals(fresh_db: str) -> None:
    """While the load query says the server is too busy, the throttle waits ``throttle_poll_min``
    first, 1.5x longer each time up to ``throttle_poll_max``; it lets the batch run once the load
    drops."""
    _sql(fresh_db, "CREATE TABLE load (n float); INSERT INTO load VALUES (9)")
    slept: list[float] = []
    with psycopg.connect(fresh_db, autocommit=True) as conn:

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == 6:
                conn.execute("UPDATE load SET n = 0")

        settings = dataclasses.replace(
            FAST, max_load=1, load_sql="SELECT n FROM load", throttle_poll_min="100ms", throttle_poll_max="250ms",
        )
        throttle = Throttle(settings, lambda sql: conn.execute(sql).fetchone()[0], "test", sleep=sleep)  # type: ignore[index]
        throttle.wait_until_clear()
    assert slept == pytest.approx([0.1, 0.15, 0.225, 0.25, 0.25, 0.25])


@pytest.mark.parametrize(("wait_max", "finishes"), [("1s", True), ("0s", False)])
def test_after_a_cancelled_batch_the_backfill_waits_longer_each_time(
    op: Any, monkeypatch: pytest.MonkeyPatch, wait_max: str, finishes: bool
) -> None:
    """An application transaction holds row 3000 for 4 s.  Each batch that reaches it is
    cancelled at 25 ms; the backfill then waits (no row lock held) 25 ms, 50 ms, ... up to
    ``backfill_cancel_wait_max`` before it tries again, so it outlasts the transaction and
    finishes.  Without the wait, its 20 cancellations are used up in about a second."""
    _use(monkeypatch, dataclasses.replace(FAST, backfill_min_batch=50, backfill_cancel_wait_max=wait_max))
    url = _url(op)
    _sql(url, "CREATE TABLE t (id bigint PRIMARY KEY, w text); "
              "INSERT INTO t (id) SELECT g FROM generate_series(1, 6000) g")
    holder = psycopg.connect(url)
    holder.execute("SELECT * FROM t WHERE id = 3000 FOR UPDATE")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runtime.backfill(op, "t", "w", "'x'", batch_size=2000, pause_ms=0, lock_timeout="5s")
        except BaseException as exc:  # checked below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        time.sleep(4)
    finally:
        holder.rollback()
        holder.close()
    worker.join(30)
    assert not worker.is_alive()
    if finishes:
        assert not errors, errors
        assert _sql(url, "SELECT count(*) FROM t WHERE w IS NULL")[0] == 0
    else:
        assert len(errors) == 1 and "21 batches in a row ran past 25 ms" in str(errors[0]), errors


def test_the_undo_of_a_failed_step_is_bounded_by_undo_attempts_and_undo_lock_timeout(
    op: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A VALIDATE that finds a violating row is undone (the NOT VALID constraint dropped, so it
    stops checking new rows).  An application transaction that read the table holds the lock the
    drop needs: the undo waits ``undo_lock_timeout`` per attempt, ``undo_attempts`` times, then
    stops naming the statement left to run by hand -- read from pyproject."""
    read = _settings(tmp_path, 'undo_attempts = 2\nundo_lock_timeout = "100ms"\nlock_guard = false\n')
    assert (read.undo_attempts, read.undo_lock_timeout) == (2, "100ms")
    assert (RuntimeSettings().undo_attempts, RuntimeSettings().undo_lock_timeout) == (10, "5s")
    _use(monkeypatch, dataclasses.replace(FAST, undo_attempts=2, undo_lock_timeout="100ms", lock_guard=False))
    url = _url(op)
    _sql(url, "CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, -1); "
              "ALTER TABLE t ADD CONSTRAINT n_positive CHECK (n > 0) NOT VALID")
    holder = psycopg.connect(url)
    holder.execute("SELECT count(*) FROM t")
    began = time.monotonic()
    try:
        with pytest.raises(runtime.StepFailed) as failed:
            runtime.run_in_own_transaction(
                op, ["ALTER TABLE t VALIDATE CONSTRAINT n_positive"],
                undo_on_failure=["ALTER TABLE t DROP CONSTRAINT n_positive"],
            )
        took = time.monotonic() - began
        still = _sql(url, "SELECT count(*) FROM pg_constraint WHERE conname = 'n_positive'")[0]
    finally:
        holder.rollback()
        holder.close()
    message = str(failed.value)
    assert "undoing it failed too at `ALTER TABLE t DROP CONSTRAINT n_positive`" in message
    assert "in 2 attempts" in message and "run the remaining statements by hand" in message
    assert still == 1, "the constraint the undo could not drop is still there, as the message says"
    assert took < 3.0, f"two 100 ms attempts and one backoff, not ten 5 s waits: {took:.1f}s"
    runtime.run_in_own_transaction(op, ["ALTER TABLE t DROP CONSTRAINT n_positive"])
