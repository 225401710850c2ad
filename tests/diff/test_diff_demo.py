"""The demo's drift section (``helios_migrate.demo.show_drift``) on the shop example, on real
PostgreSQL 15 and 18: a hand-made index is found by ``diff head URL``, converged by the revision
``--write`` writes, and the history is left as it was."""

from __future__ import annotations

from pathlib import Path

import psycopg
from rich.console import Console

from helios_migrate.demo import alembic, copy_project, show_drift


def test_show_drift_finds_writes_applies_and_leaves_the_history(fresh_db: str, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "shop")
    alembic(project, fresh_db, "upgrade", "head")
    before = alembic(project, fresh_db, "current").stdout.strip().splitlines()[-1]
    console = Console(record=True, width=200)
    show_drift(console, project, fresh_db)
    text = console.export_text()
    assert "+ index public.orders_hotfix_idx (extra in TARGET): ON public.orders USING btree (status, placed_at)" in text
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.orders_hotfix_idx" in text
    assert "\nno differences\n" in text
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('orders_hotfix_idx')").fetchone() == (None,)
    assert alembic(project, fresh_db, "current").stdout.strip().splitlines()[-1] == before
    assert len(list((project / "migrations" / "versions").glob("*.py"))) == 1
