"""``helios-migrate pause`` / ``resume`` against a running backfill on a real server (PostgreSQL 15
and 18): the command line an operator types, the pause file the runtime polls."""

from __future__ import annotations

import subprocess
import sys
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
from helios_migrate.config import RuntimeSettings


@pytest.fixture
def op(fresh_db: str) -> Iterator[Any]:
    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        yield Operations(MigrationContext.configure(conn))
    engine.dispose()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(w) FROM t").fetchone()
        return int(row[0]) if row else -1


def test_pause_holds_a_running_backfill_and_resume_lets_it_finish(
    op: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.helios-migrate]\npause_file = "hold.flag"\n')
    monkeypatch.chdir(tmp_path)  # the directory alembic runs in
    settings = RuntimeSettings(max_replica_lag=None, pause_file="hold.flag", backfill_target_ms=5,
                               backfill_min_batch=50)
    monkeypatch.setattr(runtime, "settings", lambda: settings)
    url = op.get_bind().engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, w int); "
                     "INSERT INTO t (id) SELECT g FROM generate_series(1, 200000) g")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            runtime.backfill(op, "t", "w", "1", batch_size=500, pause_ms=0, progress=False)
        except BaseException as exc:  # checked below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while _count(url) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    paused = _cli("pause", "--reason", "checkout incident", cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert "hold.flag" in paused.stdout
    assert "checkout incident" in (tmp_path / "hold.flag").read_text()
    time.sleep(0.5)  # the batch running when the file appeared commits
    held = _count(url)
    time.sleep(1.5)
    assert _count(url) == held < 200000, "no batch runs while paused"
    assert worker.is_alive()

    resumed = _cli("resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not (tmp_path / "hold.flag").exists()
    worker.join(60)
    assert not worker.is_alive() and not errors, errors
    assert _count(url) == 200000

    again = _cli("resume", cwd=tmp_path)
    assert again.returncode == 0 and "not paused" in again.stdout


def test_pause_refuses_clearly_without_a_directory_or_with_a_broken_config(tmp_path: Path) -> None:
    missing = _cli("pause", "--dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.helios-migrate\n")
    broken = _cli("pause", cwd=tmp_path)
    assert broken.returncode == 2 and "pyproject.toml" in broken.stderr
    assert "Traceback" not in broken.stderr + missing.stderr
