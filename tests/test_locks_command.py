"""``helios-migrate locks`` end to end, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "locks", *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )


def test_volatile_default_is_access_exclusive_rewrite() -> None:
    res = run("ALTER TABLE t ADD COLUMN c float DEFAULT random()", "--pg-version", "15")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "ACCESS EXCLUSIVE on t" in out
    assert "blocks reads and writes" in out
    assert "rewrites the table" in out
    assert "safer" in out and "backfill" in out


def test_json_output_per_statement() -> None:
    sql = "CREATE INDEX CONCURRENTLY ix ON t (a);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"
    res = run(sql, "--pg-version", "18", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["pg_version"] == "18"
    first, second = doc["statements"]
    assert (first["line"], second["line"]) == (1, 2)
    eff = first["effects"][0]
    assert eff["locks"][0]["mode"] == "SHARE UPDATE EXCLUSIVE"
    assert eff["transaction"] == "outside transaction only"
    assert eff["blocks_writes"] is False
    nn = second["effects"][0]
    assert nn["work"] == "scan" and "NOT VALID" in nn["safer_alternative"]


def test_reads_sql_file_and_stdin(tmp_path: Path) -> None:
    f = tmp_path / "m.sql"
    f.write_text("DROP INDEX ix;\n", encoding="utf-8")
    by_file = run(str(f), "--pg-version", "16")
    by_stdin = run("-", "--pg-version", "16", stdin="DROP INDEX ix;\n")
    assert by_file.returncode == by_stdin.returncode == 0
    assert f"{f}:1:1" in by_file.stdout and "<stdin>:1:1" in by_stdin.stdout
    assert "DROP INDEX CONCURRENTLY" in by_file.stdout


def test_syntax_error_names_line_and_column_and_exits_2() -> None:
    res = run("SELECT 1;\nALTER TABLE t ADD COLUMN c int DEFALT 1;", "--pg-version", "15")
    assert res.returncode == 2
    assert "<sql>:2:" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_version_and_unreachable_database_exit_2(tmp_path: Path) -> None:
    bad = run("SELECT 1", "--pg-version", "nine")
    assert bad.returncode == 2 and "not a PostgreSQL version" in bad.stderr
    url = f"postgresql://nobody@/x?host={tmp_path}&port=1"
    down = run("SELECT 1", "--database-url", url)
    assert down.returncode == 2
    assert "cannot connect" in down.stderr and "Traceback" not in down.stderr


def test_database_url_makes_type_changes_exact(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a varchar(50), b integer)")
        major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert major is not None
    offline = run("ALTER TABLE t ALTER COLUMN a TYPE varchar(100)", "--pg-version", "15", "--format", "json")
    online = run("ALTER TABLE t ALTER COLUMN a TYPE varchar(100)", "--database-url", fresh_db, "--format", "json")
    narrowing = run("ALTER TABLE t ALTER COLUMN b TYPE bigint", "--database-url", fresh_db, "--format", "json")
    off = json.loads(offline.stdout)["statements"][0]["effects"][0]
    on_doc = json.loads(online.stdout)
    on = on_doc["statements"][0]["effects"][0]
    assert on_doc["pg_version"].split(".")[0] == str(major[0])
    assert on_doc["pg_version_source"] == "read from the database"
    # Offline, the old type is unknown: assume the worst and say so.
    assert off["rewrites_table"] is True and off["certainty"] == "conservative"
    # Online, the catalog says varchar(50) -> varchar(100) only widens.
    assert on["rewrites_table"] is False and on["work"] == "metadata"
    assert json.loads(narrowing.stdout)["statements"][0]["effects"][0]["rewrites_table"] is True


def test_database_url_names_indexes_a_type_change_rebuilds(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (id bigint PRIMARY KEY, at timestamp, label varchar(20))")
        conn.execute("CREATE INDEX ev_at_idx ON ev (at)")
        conn.execute("CREATE INDEX ev_label_idx ON ev (label)")
    utc = "SET TIME ZONE 'UTC';\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz;"
    text = run(utc, "--database-url", fresh_db)
    assert text.returncode == 0, text.stderr
    assert "index rebuild under ACCESS EXCLUSIVE" in text.stdout
    assert "indexes rebuilt: public.ev_at_idx" in text.stdout
    assert "timestamp_ops" not in text.stdout and "operator class changes" in text.stdout

    doc = json.loads(run(utc, "--database-url", fresh_db, "--format", "json").stdout)
    eff = doc["statements"][1]["effects"][0]
    assert eff["rewrites_table"] is False and eff["work"] == "index build"
    assert eff["rebuilt_indexes"] == ["public.ev_at_idx"]
    assert eff["blocks_reads"] is True

    # The file's own TimeZone decides: outside UTC the whole table and every index are rewritten.
    ny = utc.replace("'UTC'", "'America/New_York'")
    eff = json.loads(run(ny, "--database-url", fresh_db, "--format", "json").stdout)["statements"][1]["effects"][0]
    assert eff["rewrites_table"] is True and eff["work"] == "rewrite"
    assert eff["rebuilt_indexes"] == ["public.ev_at_idx", "public.ev_label_idx", "public.ev_pkey"]

    # varchar -> text keeps text_ops and the collation: the index is kept, catalog only.
    eff = json.loads(
        run("ALTER TABLE ev ALTER COLUMN label TYPE text", "--database-url", fresh_db, "--format", "json").stdout
    )["statements"][0]["effects"][0]
    assert eff["work"] == "metadata" and eff["rebuilt_indexes"] == []
    # ... unless the collation changes with it.
    eff = json.loads(
        run('ALTER TABLE ev ALTER COLUMN label TYPE text COLLATE "C"', "--database-url", fresh_db,
            "--format", "json").stdout
    )["statements"][0]["effects"][0]
    assert eff["work"] == "index build" and eff["rebuilt_indexes"] == ["public.ev_label_idx"]
