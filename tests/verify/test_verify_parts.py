"""Synthetic rows, the scratch-database guard, range selection and the Debian server option."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
from verify_helpers import Rev, make_project

from helios_migrate import pgserver
from helios_migrate.pgserver import RunningServer
from helios_migrate.verify import VerifyOptions, run_verify
from helios_migrate.verify.synth import fill_tables

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email varchar(12) NOT NULL UNIQUE,
    mood mood NOT NULL,
    born date,
    seen timestamptz DEFAULT now(),
    profile jsonb,
    token uuid UNIQUE,
    active boolean NOT NULL
);
CREATE TABLE products (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    total numeric(8, 2) NOT NULL CHECK (total > 10),
    qty smallint NOT NULL,
    tags text[],
    blob bytea
);
CREATE TABLE order_lines (
    order_id bigint REFERENCES orders,
    product_id integer REFERENCES products,
    PRIMARY KEY (order_id, product_id)
);
CREATE TABLE tree (id integer PRIMARY KEY, parent integer REFERENCES tree);
CREATE TABLE shapes (id integer PRIMARY KEY, area box NOT NULL);
"""


def test_fill_respects_types_keys_and_constraints(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        results = {r.table: r for r in fill_tables(conn, 3_000)}
        assert results["public.customers"].rows == 3_000
        assert results["public.products"].rows == 3_000
        assert results["public.order_lines"].rows == 3_000
        assert results["public.tree"].rows == 3_000
        # CHECK (total > 10) filters the generated rows instead of failing the insert.
        assert 0 < results["public.orders"].rows < 3_000
        assert "CHECK" in (results["public.orders"].problem or "")
        shapes = results["public.shapes"]
        assert shapes.rows == 0 and "area" in (shapes.problem or "") and "box" in (shapes.problem or "")
        moods = conn.execute("SELECT count(DISTINCT mood) FROM customers").fetchone()
        assert moods == (3,)
        # Sequences moved past the values given explicitly: the next insert does not collide.
        conn.execute("INSERT INTO products DEFAULT VALUES")
        # Only empty tables are filled.
        assert [r.table for r in fill_tables(conn, 10)] == ["public.shapes"]


def test_env_py_that_ignores_the_url_is_stopped(
    tmp_path: Path, fresh_db: str, pg_server: RunningServer
) -> None:
    other = pgserver.create_database(pg_server, f"hm_verify_other_{os.getpid()}", "template0")
    try:
        ini = make_project(tmp_path / "p", [Rev("t", 'op.execute("CREATE TABLE t (id int)")', 'op.execute("DROP TABLE t")')])
        env = (tmp_path / "p" / "env.py").read_text()
        other_sa = other.replace("postgresql://", "postgresql+psycopg://", 1)
        (tmp_path / "p" / "env.py").write_text(env.replace(
            'url = config.get_main_option("sqlalchemy.url")', f"url = {other_sa!r}"))
        report = run_verify(VerifyOptions(config_file=ini, database_url=fresh_db, rows=10))
        assert report.exit_code == 1
        finding = report.revisions[0].findings[0]
        assert finding.code == "wrong-database", finding
        assert "not to the scratch database" in finding.message
        with psycopg.connect(other, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('t') IS NULL").fetchone() == (True,)
    finally:
        pgserver.drop_database(pg_server, other.rsplit("/", 1)[1].split("?")[0])


def test_range_starts_from_its_parent(tmp_path: Path, fresh_db: str) -> None:
    revs = [
        Rev(f"table t{i}", f'op.execute("CREATE TABLE t{i} (id int PRIMARY KEY)")', f'op.execute("DROP TABLE t{i}")')
        for i in range(1, 5)
    ]
    ini = make_project(tmp_path / "p", revs)
    report = run_verify(VerifyOptions(config_file=ini, database_url=fresh_db, rows=10, revision_range="r002:r003"))
    assert [r.revision for r in report.revisions] == ["r002", "r003"]
    assert report.exit_code == 0
    # The database is now ahead of the range's parent: verify migrates it down first.
    report = run_verify(VerifyOptions(
        config_file=ini, database_url=fresh_db, rows=10, revision_range="r002", allow_nonempty=True))
    assert [r.revision for r in report.revisions] == ["r002"]
    assert report.exit_code == 0, report.all_findings()


def test_cli_pg15_server(tmp_path: Path) -> None:
    """``--pg 15`` runs on Debian's binaries; without them it says so and exits 2."""
    ini = make_project(tmp_path / "p", [Rev(
        "t", 'op.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")', 'op.execute("DROP TABLE t")'
    ), Rev("index", 'op.create_index("t_v_idx", "t", ["v"])', 'op.drop_index("t_v_idx", table_name="t")')])
    res = subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "verify", "-c", str(ini), "--pg", "15", "--rows", "500"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"},
    )
    if pgserver.binaries_major(pgserver.DEFAULT_DEBIAN_BINDIR) != 15:
        assert res.returncode == 2 and "15" in res.stderr and "Traceback" not in res.stderr
        return
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PostgreSQL 15." in res.stdout
    assert "SHARE on t" in textwrap.dedent(res.stdout)
