"""End to end: change the models, ``alembic revision --autogenerate``, then ``alembic upgrade head``
on 100,000 rows while a writer inserts and updates; no write waits longer than lock_timeout plus a
margin, ``alembic check`` is clean, no row is lost, and downgrade + upgrade work.  PG 15 and 18."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from autogen_harness import Project, Writer, code, models_source

LOCK_TIMEOUT_S = 1.0
MARGIN_S = 1.0
ALLOW_LOSS = {"HELIOS_ALLOW_DATA_LOSS": "1"}

CASES: dict[str, tuple[dict[str, str | None], list[str] | None, tuple[str, ...], bool]] = {
    # name: (column overrides, extra table items, expected text in the revision, downgrade loses data)
    "add-not-null-volatile-default": (
        {"token": 'sa.Column("token", sa.Uuid, nullable=False, server_default=sa.text("gen_random_uuid()"))'},
        None,
        ("runtime.backfill(op, 'items', 'token', 'gen_random_uuid()'", "VALIDATE CONSTRAINT items_token_not_null"),
        False,
    ),
    "set-not-null": (
        {"note": 'sa.Column("note", sa.Text, nullable=False)'},
        None,
        ("VALIDATE CONSTRAINT items_note_not_null",),
        False,
    ),
    "foreign-key": (
        {"parent_id": 'sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parents.id"), index=True)'},
        None,
        ("FOREIGN KEY (parent_id) REFERENCES parents (id) NOT VALID", "VALIDATE CONSTRAINT items_parent_id_fkey",
         "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_parent_id"),
        False,
    ),
    "unique": (
        {"code": 'sa.Column("code", sa.Text, unique=True)'},
        None,
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_code_key", "UNIQUE USING INDEX items_code_key"),
        False,
    ),
    "create-and-drop-index": (
        {},
        ['sa.Index("items_price_idx", "price")'],
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS items_price_idx", "DROP INDEX CONCURRENTLY IF EXISTS items_status_idx"),
        False,
    ),
    "alter-type-in-place": (
        {"status": 'sa.Column("status", sa.String(50))'},
        None,
        ("ALTER COLUMN status TYPE varchar(50)",),
        False,
    ),
    "alter-type-expand-contract": (
        {"score": 'sa.Column("score", sa.BigInteger)'},
        None,
        ("ADD COLUMN IF NOT EXISTS score__new bigint", "runtime.sync_column_trigger(", "RENAME COLUMN score__new TO score"),
        False,  # the way down is an expand/contract in reverse: nothing is lost
    ),
    "drop-column": (
        {"legacy": None},
        None,
        ("CONTRACT", "DROP COLUMN IF EXISTS legacy"),
        True,
    ),
}


def _run_case(project: Project, columns: dict[str, str | None], extra: list[str] | None,
              expected: tuple[str, ...], loses_data: bool) -> None:
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.write_models(models_source(columns, extra))
    revision = project.autogenerate()
    for text in expected:
        assert text in (code(revision) if text.startswith("runtime.") else revision), revision
    offline = project.alembic("upgrade", "head", "--sql").stdout
    assert "COMMIT;" in offline
    before = project.count("SELECT count(*) FROM items")
    writer = Writer(project.url)
    writer.start()
    time.sleep(0.3)
    try:
        began = time.monotonic()
        project.alembic("upgrade", "head")
        took = time.monotonic() - began
    finally:
        time.sleep(0.3)
        writer.stop()
    assert not writer.errors, writer.errors[:5]
    assert writer.statements > 20
    assert writer.longest < LOCK_TIMEOUT_S + MARGIN_S, (writer.longest, took)
    assert project.count("SELECT count(*) FROM items") == before + writer.inserted
    check = project.alembic("check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    env = ALLOW_LOSS if loses_data else None
    if loses_data:
        refused = project.alembic("downgrade", "-1", check=False)
        assert refused.returncode != 0 and "HELIOS_ALLOW_DATA_LOSS" in refused.stderr
    project.alembic("downgrade", "-1", env=env)
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items") == before + writer.inserted


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    return Project.create(tmp_path / "proj", fresh_db)


@pytest.mark.parametrize("case", list(CASES))
def test_rewrite_under_concurrent_writer(project: Project, case: str) -> None:
    columns, extra, expected, loses_data = CASES[case]
    _run_case(project, columns, extra, expected, loses_data)


def test_mixed_revision(project: Project) -> None:
    columns: dict[str, str | None] = {}
    for name in ("add-not-null-volatile-default", "foreign-key", "unique", "alter-type-in-place", "drop-column"):
        columns.update(CASES[name][0])
    expected = tuple(t for name in ("foreign-key", "unique", "drop-column") for t in CASES[name][2])
    _run_case(project, columns, ['sa.Index("items_price_idx", "price")'], expected, True)


def test_interrupted_upgrade_runs_again(project: Project) -> None:
    """Kill the upgrade in the middle of the backfill; the second run finishes the plan.

    The kill is deterministic: fixed batches of 2,000 rows, and a throttle whose "load" is the
    number of rows already filled, so the backfill runs exactly one batch and then waits (logging
    why) until the test kills it; the re-run has no such throttle."""
    settings = '[tool.helios-migrate]\nlock_timeout = "1s"\nbackfill_batch_size = 2000\nbackfill_target_ms = 0\n'
    (project.root / "pyproject.toml").write_text(
        settings + 'max_load = 0\nthrottle_interval = "0s"\nload_sql = "SELECT count(*) FROM items WHERE token IS NOT NULL"\n'
    )
    columns = dict(CASES["add-not-null-volatile-default"][0])
    columns.update(CASES["unique"][0])
    project.write_models(models_source(columns))
    project.autogenerate()
    before = project.count("SELECT count(*) FROM items")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=project.root, env=project.env,
        stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "backfill" in line and "items.token" in line and "waiting: load" in line:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert "waiting: load" in "".join(seen), "".join(seen)
    # Killed mid-backfill: the first batch is committed, the rest of the table is not filled.
    assert project.count("SELECT count(*) FROM items WHERE token IS NOT NULL") == 2000, "".join(seen)
    assert project.count("SELECT count(*) FROM items WHERE token IS NULL") == before - 2000
    assert project.count("SELECT count(*) FROM alembic_version") == 0
    (project.root / "pyproject.toml").write_text(settings)
    project.alembic("upgrade", "head")
    assert project.count("SELECT count(*) FROM items WHERE token IS NULL") == 0
    assert project.count("SELECT count(*) FROM items") == before
    assert project.alembic("check", check=False).returncode == 0


def test_env_hook_fallback_plans_without_the_plugin_line(project: Project) -> None:
    env = (project.root / "env.py").read_text()
    env = env.replace(
        'autogenerate_plugins=["alembic.autogenerate.*", "helios"],',
        "process_revision_directives=chain(),",
    ).replace("import models\n", "import models\nfrom alembic_plugin.env_hook import chain\n")
    (project.root / "env.py").write_text(env)
    project.write_models(models_source(CASES["set-not-null"][0]))
    revision = project.autogenerate()
    assert "VALIDATE CONSTRAINT items_note_not_null" in revision
    assert "DROP NOT NULL" in revision.split("def downgrade")[1]
    project.alembic("upgrade", "head")
    project.alembic("downgrade", "-1")
