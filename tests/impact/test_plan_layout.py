"""``plan``'s text output is readable at any width: a table when it fits, one block per step when
it does not (``COLUMNS`` honoured, piped output included)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from helios_migrate.impact import estimate_plan, render_table
from helios_migrate.plan_command import steps_for
from helios_migrate.sql_parse import parse_statements
from helios_migrate.versions import PgVersion

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL = (
    "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n"
    "ALTER TABLE orders ALTER COLUMN note TYPE varchar(100);\n"
    "ALTER TABLE orders ADD COLUMN flag boolean DEFAULT false;\n"
)


def _impact():  # type: ignore[no-untyped-def]
    version = PgVersion.parse("15")
    plan = steps_for(((st.sql, st.changes) for st in parse_statements(SQL, "<sql>")), version)
    return estimate_plan(plan, None, version)


def _render(width: int) -> str:
    buf = io.StringIO()
    render_table(_impact(), Console(file=buf, width=width, highlight=False, color_system=None))
    return buf.getvalue()


def test_narrow_width_gives_one_block_per_step_with_whole_words() -> None:
    out = _render(80)
    assert "┃" not in out and "│" not in out  # no table
    assert "1. create index" in out.lower()
    assert "   lock     SHARE UPDATE EXCLUSIVE" in out
    assert "   blocks   other DDL and VACUUM only" in out
    assert "   work     metadata" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "metada\n" not in out and "nothin" not in out.replace("nothing", "")


def test_wide_width_keeps_the_table() -> None:
    out = _render(250)
    assert "┃" in out or "│" in out
    assert "SHARE UPDATE EXCLUSIVE" in out and "   lock     " not in out


def test_columns_environment_decides_when_piped(tmp_path: Path) -> None:
    sql = tmp_path / "change.sql"
    sql.write_text(SQL)

    def run(columns: str) -> str:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": columns,
               "HELIOS_MIGRATE_CACHE_DIR": str(tmp_path / ".cache")}
        res = subprocess.run(
            [sys.executable, "-m", "helios_migrate.cli", "plan", "--sql", str(sql), "--pg-version", "15"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        assert res.returncode == 0, res.stderr
        return res.stdout

    narrow, wide = run("80"), run("250")
    assert "   lock     SHARE UPDATE EXCLUSIVE" in narrow
    assert "   lock     " not in wide and "SHARE UPDATE EXCLUSIVE" in wide
