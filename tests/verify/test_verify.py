"""``helios-migrate verify`` on real PostgreSQL 15 and 18, with temporary Alembic projects."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from verify_helpers import Rev, make_project

from helios_migrate import knowledge
from helios_migrate.changes import AlterColumnType
from helios_migrate.effects import Effect, WorkClass
from helios_migrate.locks import LockMode
from helios_migrate.verify import (
    Severity,
    VerifyOptions,
    VerifyReport,
    compare_statement,
    run_verify,
)
from helios_migrate.verify.report import render

ROWS = 2_000

TABLES = Rev(
    "accounts and events",
    """
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("balance", sa.Numeric(10, 2), nullable=False),
        sa.CheckConstraint("balance >= 0", name="balance_positive"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    """,
    """
    op.drop_table("events")
    op.drop_table("accounts")
    """,
)

ADD_COLUMN = Rev(
    "add a nullable column",
    'op.add_column("events", sa.Column("source", sa.String(40)))',
    'op.drop_column("events", "source")',
)

INDEX_CONCURRENTLY = Rev(
    "index built concurrently",
    """
    with op.get_context().autocommit_block():
        op.create_index("events_at_idx", "events", ["at"], postgresql_concurrently=True)
    """,
    """
    with op.get_context().autocommit_block():
        op.drop_index("events_at_idx", table_name="events", postgresql_concurrently=True)
    """,
)

FOREIGN_KEY_NOT_VALID = Rev(
    "foreign key added NOT VALID, validated in its own transaction",
    """
    op.execute(
        "ALTER TABLE events ADD CONSTRAINT events_account_fk FOREIGN KEY (account_id) "
        "REFERENCES accounts (id) NOT VALID"
    )
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE events VALIDATE CONSTRAINT events_account_fk")
    """,
    'op.drop_constraint("events_account_fk", "events", type_="foreignkey")',
)

WIDEN_QTY = Rev(
    "qty to bigint (rewrites the table)",
    'op.execute("ALTER TABLE events ALTER COLUMN qty TYPE bigint")',
    'op.execute("ALTER TABLE events ALTER COLUMN qty TYPE integer")',
)


def _verify(tmp_path: Path, url: str, revs: list[Rev], **kw: Any) -> VerifyReport:
    ini = make_project(tmp_path / "project", revs)
    return run_verify(VerifyOptions(config_file=ini, database_url=url, **{"rows": ROWS, **kw}))


def _codes(report: VerifyReport, severity: Severity | None = None) -> list[str]:
    return [
        f.code for f in report.all_findings()
        if severity is None or f.severity is severity
    ]


def test_lock_safe_revisions_pass_the_stairway(tmp_path: Path, fresh_db: str) -> None:
    report = _verify(
        tmp_path, fresh_db, [TABLES, ADD_COLUMN, INDEX_CONCURRENTLY, FOREIGN_KEY_NOT_VALID], rows=10_000
    )
    text = render(report, "text")
    assert report.exit_code == 0, text
    assert [r.steps for r in report.revisions] == [
        {"upgrade": "ok", "downgrade": "ok", "re-upgrade": "ok"}
    ] * 4
    by_sql = {st.sql.split(" ON ")[0]: st for r in report.revisions for st in r.statements}
    cic = by_sql["CREATE INDEX CONCURRENTLY events_at_idx"]
    assert cic.locks["events"].mode is LockMode.SHARE_UPDATE_EXCLUSIVE
    assert not cic.in_transaction
    add = next(st for st in report.revisions[1].statements if st.phase == "upgrade")
    assert add.locks["events"].mode is LockMode.ACCESS_EXCLUSIVE
    assert add.rewritten == []
    # The tables were filled: every one of the ROWS rows satisfies the CHECK.
    fills = {f.table: f.rows for f in report.revisions[1].fills}
    assert fills == {"public.accounts": 10_000, "public.events": 10_000}


def test_a_concurrent_build_is_seen_and_not_made_to_time_out(tmp_path: Path, fresh_db: str) -> None:
    """A concurrent build on a small table ends in milliseconds; verify holds an old snapshot so it
    is seen with its lock, and never long enough to trip the build's own short lock_timeout."""
    short_timeout = Rev(
        "index and reindex built concurrently under a 40 ms lock_timeout",
        """
        with op.get_context().autocommit_block():
            op.execute("SET lock_timeout = '40ms'")
            op.create_index("events_at_idx", "events", ["at"], postgresql_concurrently=True)
            op.execute("-- the statement may start with a comment\\nREINDEX INDEX CONCURRENTLY events_at_idx")
            op.execute("SET lock_timeout = 0")
        """,
        """
        with op.get_context().autocommit_block():
            op.drop_index("events_at_idx", table_name="events", postgresql_concurrently=True)
        """,
    )
    report = _verify(tmp_path, fresh_db, [TABLES, short_timeout], rows=500)
    assert report.exit_code == 0, render(report, "text")
    upgrade = [st for st in report.revisions[1].statements if st.phase == "upgrade"]
    for prefix in ("CREATE INDEX CONCURRENTLY", "REINDEX INDEX CONCURRENTLY"):
        st = next(st for st in upgrade if prefix in st.sql)
        assert st.error is None, st.sql
        assert st.locks["events"].mode is LockMode.SHARE_UPDATE_EXCLUSIVE, (st.sql, st.locks)
    with psycopg.connect(fresh_db) as conn:  # the witness transactions are gone
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'helios-verify-witness'"
        ).fetchone()
    assert left == (0,)


def test_real_rewrite_matches_prediction(tmp_path: Path, fresh_db: str) -> None:
    report = _verify(tmp_path, fresh_db, [TABLES, WIDEN_QTY])
    assert report.exit_code == 0, render(report, "text")
    up = next(st for st in report.revisions[1].statements if st.phase == "upgrade")
    assert "events" in up.rewritten
    assert up.locks["events"].mode is LockMode.ACCESS_EXCLUSIVE
    assert any(e.rewrites_table for e in up.effects)


def _claims_metadata_only(change: Any, version: Any, catalog: Any = None) -> Effect:
    real = _REAL_EFFECT_OF(change, version, catalog)
    if isinstance(change, AlterColumnType):
        return dataclasses.replace(real, work=WorkClass.METADATA, rewrites_table=False, builds_index=False)
    return real


_REAL_EFFECT_OF = knowledge.effect_of


def test_rewrite_predicted_metadata_only_is_an_error(
    tmp_path: Path, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A knowledge base that claims the type change is metadata-only is caught by the relfilenode."""
    monkeypatch.setattr(knowledge, "effect_of", _claims_metadata_only)
    report = _verify(tmp_path, fresh_db, [TABLES, WIDEN_QTY])
    assert report.exit_code == 1
    errors = [f for f in report.all_findings() if f.severity is Severity.ERROR]
    assert {f.code for f in errors} >= {"unpredicted-rewrite"}
    rewrite = next(f for f in errors if f.code == "unpredicted-rewrite")
    assert rewrite.revision == "r002"
    assert "table events was rewritten" in rewrite.message
    assert "metadata-only" in rewrite.message


def test_lock_stronger_than_predicted_is_an_error(tmp_path: Path, fresh_db: str) -> None:
    """The comparison on a real observation with a fabricated, too optimistic prediction."""
    report = _verify(tmp_path, fresh_db, [TABLES, ADD_COLUMN], stairway=False)
    st = next(s for s in report.revisions[1].statements if s.phase == "upgrade")
    assert st.locks["events"].mode is LockMode.ACCESS_EXCLUSIVE
    optimistic = [
        dataclasses.replace(
            e, locks=tuple(dataclasses.replace(lk, mode=LockMode.SHARE_UPDATE_EXCLUSIVE) for lk in e.locks)
        )
        for e in st.effects
    ]
    findings = compare_statement(dataclasses.replace(st, effects=optimistic))
    assert [(f.severity, f.code) for f in findings] == [(Severity.ERROR, "lock-stronger")]
    assert "ACCESS EXCLUSIVE on events" in findings[0].message
    assert "predicted SHARE UPDATE EXCLUSIVE" in findings[0].message
    # The real prediction agrees with the server.
    assert compare_statement(st) == []


def test_downgrade_that_loses_a_columns_data_is_reported(tmp_path: Path, fresh_db: str) -> None:
    drop_note = Rev(
        "drop events.note",
        'op.drop_column("events", "note")',
        'op.add_column("events", sa.Column("note", sa.Text))',
    )
    report = _verify(tmp_path, fresh_db, [TABLES, drop_note])
    assert report.exit_code == 1
    loss = [f for f in report.revisions[1].findings if f.code == "data-loss"]
    assert len(loss) == 1 and loss[0].severity is Severity.ERROR
    assert "public.events" in loss[0].message and "note" in loss[0].message
    assert f"{ROWS} non-null before, none after" in loss[0].message
    # The schema itself came back: only the data is lost.
    assert "schema-mismatch" not in _codes(report)


def test_downgrade_that_forgets_an_index_is_a_schema_mismatch(tmp_path: Path, fresh_db: str) -> None:
    sloppy = Rev("index without downgrade", 'op.create_index("events_qty_idx", "events", ["qty"])', "pass")
    report = _verify(tmp_path, fresh_db, [TABLES, sloppy])
    assert report.exit_code == 1
    mismatch = next(f for f in report.revisions[1].findings if f.code == "schema-mismatch")
    assert "+ index: CREATE INDEX events_qty_idx ON public.events USING btree (qty)" in mismatch.message


def test_revision_that_raises_is_named(tmp_path: Path, fresh_db: str) -> None:
    broken = Rev("broken", 'op.execute("ALTER TABLE events ADD COLUMN qty integer")', "pass")
    report = _verify(tmp_path, fresh_db, [TABLES, broken])
    assert report.exit_code == 1
    failed = report.revisions[1]
    assert failed.steps == {"upgrade": "failed"}
    finding = next(f for f in failed.findings if f.code == "upgrade-failed")
    assert "upgrade of r002 raised 42701" in finding.message
    assert "ADD COLUMN qty" in finding.message


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "verify", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"},
    )


def test_cli_json_and_exit_codes(tmp_path: Path, fresh_db: str) -> None:
    ini = make_project(tmp_path / "project", [TABLES, ADD_COLUMN])
    res = _cli(["-c", str(ini), "--database-url", fresh_db, "--rows", "500", "--format", "json"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert data["exit_code"] == 0
    assert [r["revision"] for r in data["revisions"]] == ["r001", "r002"]
    add = next(s for s in data["revisions"][1]["statements"] if s["phase"] == "upgrade")
    assert add["observed"]["locks"]["events"]["mode"] == "ACCESS EXCLUSIVE"
    assert add["predicted"]["locks"] == {"events": "ACCESS EXCLUSIVE"}

    # The database now holds rows: it is not a scratch database any more.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts VALUES (-1, 'x@example.com', 1)")
    res = _cli(["-c", str(ini), "--database-url", fresh_db], tmp_path)
    assert res.returncode == 2
    assert "is not a scratch database" in res.stderr and "public.accounts" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    res = _cli([], tmp_path)
    assert res.returncode == 2
    assert "no Alembic project" in res.stderr and "Traceback" not in res.stderr
    ini = make_project(tmp_path / "project", [TABLES])
    res = _cli(["-c", str(ini), "--database-url", "postgresql://nobody@127.0.0.1:1/nothing"], tmp_path)
    assert res.returncode == 2
    assert "cannot connect" in res.stderr and "Traceback" not in res.stderr
    res = _cli(["-c", str(ini), "--pg", "9"], tmp_path)
    assert res.returncode == 2 and "no PostgreSQL 9" in res.stderr


def test_cli_default_server_markdown_and_load(tmp_path: Path) -> None:
    """No --database-url: an embedded server is started for the run (and removed)."""
    ini = make_project(tmp_path / "project", [TABLES, WIDEN_QTY])
    res = _cli(["-c", str(ini), "--rows", "3000", "--load", "--format", "markdown", "--range", "r002"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "## helios-migrate verify" in res.stdout
    assert "under load" in res.stdout
    assert "| stall write / read |" in res.stdout
    assert "rewrote events" in res.stdout


def test_cli_revision_that_raises_names_revision_and_line(tmp_path: Path, fresh_db: str) -> None:
    boom = Rev("boom", 'raise RuntimeError("backfill source missing")', "pass")
    ini = make_project(tmp_path / "project", [TABLES, boom])
    res = _cli(["-c", str(ini), "--database-url", fresh_db, "--rows", "100"], tmp_path)
    assert res.returncode == 1
    assert "upgrade of r002 raised RuntimeError: backfill source missing (at versions/r002.py:" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def test_the_new_index_locked_by_its_own_create_index_is_no_finding() -> None:
    """``index_create`` locks the index it makes ACCESS EXCLUSIVE before any other session can see
    it; a sampler that catches that moment saw no hazard.  The table's lock is still compared."""
    from helios_migrate.sql_parse import changes_from_sql  # lazy: this test alone reads SQL
    from helios_migrate.verify.trace import HeldLock, TracedStatement  # lazy: as above
    from helios_migrate.versions import PgVersion  # lazy: as above

    sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_parent_id ON items (parent_id)"
    effects = [knowledge.effect_of(ch, PgVersion(18, 0)) for ch in changes_from_sql(sql)]
    new_index = HeldLock("ix_items_parent_id", LockMode.ACCESS_EXCLUSIVE, "i", "items", 1.0, 1.0)
    table = HeldLock("items", LockMode.SHARE_UPDATE_EXCLUSIVE, "r", None, 1.0, 1.0)
    st = TracedStatement(14, sql, "r1", "upgrade", effects=effects,
                         locks={"ix_items_parent_id": new_index, "items": table})
    assert compare_statement(st) == []
    # Another index of the table locked that strongly is still an error.
    other = HeldLock("items_pkey", LockMode.ACCESS_EXCLUSIVE, "i", "items", 1.0, 1.0)
    found = compare_statement(dataclasses.replace(st, locks={**st.locks, "items_pkey": other}))
    assert [(f.severity, f.code) for f in found] == [(Severity.ERROR, "index-lock-stronger")]
