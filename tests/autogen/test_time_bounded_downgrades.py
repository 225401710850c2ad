"""Downgrades are plans too, and a running upgrade stops and resumes cleanly (PostgreSQL 15 and 18).

Each test drives the user's path: models -> ``alembic revision --autogenerate`` with the plugin ->
``alembic upgrade head`` -> ``alembic downgrade`` while the application writes -> probes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, Writer, models_source

ROWS = 3000
BIGINT_QTY = {"qty": 'sa.Column("qty", sa.BigInteger, nullable=False, server_default=sa.text("0"))'}


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db, rows=ROWS)


def _one(project: Project, sql: str) -> tuple[object, ...]:
    with psycopg.connect(project.url) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return tuple(row)


def _columns(project: Project) -> list[str]:
    with psycopg.connect(project.url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        ).fetchall()]


def test_int_to_bigint_downgrade_is_lossless_under_writes(project: Project) -> None:
    """The downgrade re-creates the integer column beside the bigint one, keeps it in sync,
    backfills it in batches and swaps back: no opt-in, no table-wide UPDATE, no error for the
    version-1 application writing meanwhile; NOT NULL and the default come back."""
    project.write_models(models_source(BIGINT_QTY))
    source = project.autogenerate()
    assert "UPDATE items SET" not in source and "data_losing_step" not in source
    project.alembic("upgrade", "head")
    assert _one(project, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'items'::regclass AND attname = 'qty'") == ("bigint",)
    writer = Writer(project.url)
    writer.start()
    try:
        time.sleep(0.3)
        project.alembic("downgrade", "-1")
        time.sleep(0.3)
    finally:
        writer.stop()
    assert writer.errors == []
    assert writer.inserted > 0
    assert _one(project, "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                         "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d "
                         "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                         "WHERE a.attrelid = 'items'::regclass AND a.attname = 'qty'") == ("integer", True, "0")
    assert not [c for c in _columns(project) if c.startswith("qty__")]
    # Every row keeps its value: the seeded ones (g % 50, plus the writer's increments) and the new ones.
    assert _one(project, "SELECT count(*) FROM items WHERE qty IS NULL") == (0,)
    assert _one(project, "SELECT count(*) FROM items")[0] == ROWS + writer.inserted
    assert _one(project, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass "
                         "AND NOT tgisinternal") == (0,)


def test_downgrade_refuses_values_that_do_not_convert_back_naming_them(project: Project) -> None:
    project.write_models(models_source({"score": 'sa.Column("score", sa.BigInteger)'}))
    project.autogenerate()
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("UPDATE items SET score = 5000000000 WHERE id IN (5, 6)")
    before = _columns(project)
    res = project.alembic("downgrade", "-1", check=False)
    assert res.returncode != 0
    message = res.stdout + res.stderr
    assert "2 row(s) of items.score do not convert to INTEGER" in message or "2 row(s) of items.score" in message
    assert "id=5" in message and "id=6" in message
    assert "Traceback" not in message
    assert _columns(project) == before, "nothing changed before the refusal"
    assert _one(project, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass "
                         "AND NOT tgisinternal") == (0,)


def _rename_project(project: Project) -> None:
    (project.root / "pyproject.toml").write_text(
        (project.root / "pyproject.toml").read_text()
        + '\n[tool.helios-migrate.autogenerate]\nsplit_contract = true\nrenames = { "items.legacy" = "origin" }\n'
    )
    project.write_models(models_source({"legacy": None, "origin": 'sa.Column("origin", sa.Text, nullable=False)'}))
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items ALTER COLUMN legacy SET NOT NULL")


class _SqlWriter(threading.Thread):
    """Inserts and updates ``items`` with the given statements until stopped; records errors."""

    def __init__(self, url: str, insert: str, update: str) -> None:
        super().__init__(daemon=True)
        self.url, self.insert, self.update = url, insert, update
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.writes = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True, prepare_threshold=None) as conn:
            n = 0
            while not self.stop_event.is_set():
                n += 1
                for sql, params in ((self.insert, (f"w{n}",)), (self.update, (f"u{n}", n % ROWS + 1))):
                    try:
                        conn.execute(sql, params)
                        self.writes += 1
                    except psycopg.Error as exc:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.005)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)


def test_rename_downgrade_is_lossless_under_writes(project: Project) -> None:
    """items.legacy renamed to origin (NOT NULL), expand and contract in two revisions.  Undoing
    the contract while code using the new name writes: the old column comes back with every value
    and its NOT NULL; then undoing the expand while code using the old name writes."""
    _rename_project(project)
    project.autogenerate()
    project.alembic("upgrade", "head")
    assert "legacy" not in _columns(project)
    v2 = _SqlWriter(project.url, "INSERT INTO items (parent_id, origin) VALUES (1, %s)",
                    "UPDATE items SET origin = %s WHERE id = %s")
    v2.start()
    try:
        time.sleep(0.3)
        project.alembic("downgrade", "-1")
        time.sleep(0.3)
    finally:
        v2.stop()
    assert v2.errors == [] and v2.writes > 0
    assert _one(project, "SELECT count(*) FROM items WHERE legacy IS DISTINCT FROM origin") == (0,)
    assert _one(project, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass "
                         "AND attname = 'legacy'") == (True,)
    v1 = _SqlWriter(project.url, "INSERT INTO items (parent_id, legacy) VALUES (1, %s)",
                    "UPDATE items SET legacy = %s WHERE id = %s")
    v1.start()
    try:
        time.sleep(0.3)
        project.alembic("downgrade", "-1")
        time.sleep(0.3)
    finally:
        v1.stop()
    assert v1.errors == [] and v1.writes > 0
    assert "origin" not in _columns(project)
    assert _one(project, "SELECT count(*) FROM items WHERE legacy IS NULL") == (0,)


def test_ctrl_c_stops_the_backfill_between_batches_and_a_rerun_resumes(project: Project) -> None:
    (project.root / "pyproject.toml").write_text(
        (project.root / "pyproject.toml").read_text()
        + 'backfill_target_ms = 2\nbackfill_min_batch = 20\nbackfill_pause = "fixed"\n'
    )
    project.write_models(models_source({"score": 'sa.Column("score", sa.BigInteger)'}))
    project.autogenerate()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=project.root, env=project.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        filled = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with psycopg.connect(project.url) as conn:
                exists = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass "
                                      "AND attname = 'score__new'").fetchone()
                if exists and exists[0]:
                    row = conn.execute("SELECT count(score__new) FROM items").fetchone()
                    filled = int(row[0]) if row else 0
            if filled > 100:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the upgrade ended before it could be interrupted: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "run the upgrade again to resume" in out + err, out + err
    assert "Traceback" not in out + err
    done = _one(project, "SELECT count(score__new) FROM items")[0]
    assert 0 < int(str(done)) < ROWS, "stopped between batches, with batches kept"
    project.alembic("upgrade", "head")
    assert _one(project, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'items'::regclass AND attname = 'score'") == ("bigint",)
    assert _one(project, "SELECT count(*) FROM items WHERE score IS DISTINCT FROM id") == (0,)


def test_a_table_without_a_key_is_refused_at_autogenerate_naming_what_to_add(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (n int, note text); INSERT INTO events SELECT g FROM generate_series(1, 100) g")
    events = 'events = sa.Table("events", metadata, sa.Column("n", sa.Integer), sa.Column("note", sa.Text), {})\n'
    project.write_models(models_source(tables=events.format(
        'sa.Column("stamp", sa.Text, nullable=False, server_default=sa.text("md5(random()::text)"))')))
    res = project.alembic("revision", "--autogenerate", "-m", "stamp", check=False)
    assert res.returncode != 0
    message = res.stdout + res.stderr
    assert "events has no primary key and no unique index on NOT NULL columns" in message, message
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in message
    assert "Traceback" not in message


def test_a_table_with_a_unique_not_null_key_is_backfilled_by_it(project: Project) -> None:
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (n int NOT NULL, note text); CREATE UNIQUE INDEX events_n ON events (n); "
                     "INSERT INTO events SELECT g FROM generate_series(1, 2000) g")
    events = ('events = sa.Table("events", metadata, sa.Column("n", sa.Integer, nullable=False), '
              'sa.Column("note", sa.Text), sa.Column("stamp", sa.Text, nullable=False, '
              'server_default=sa.text("md5(random()::text)")), sa.Index("events_n", "n", unique=True))\n')
    project.write_models(models_source(tables=events))
    source = project.autogenerate()
    assert "key=('n',)" in source
    project.alembic("upgrade", "head")
    assert _one(project, "SELECT count(*), count(stamp) FROM events") == (2000, 2000)
