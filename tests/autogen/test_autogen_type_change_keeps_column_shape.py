"""Expand/contract of a column type change keeps what the old column had: NOT NULL (through the
lock-safe NOT NULL path), its default and its indexes (rebuilt CONCURRENTLY on the new column before
the swap, renamed to their old names by it); downgrade restores them on the old type.  Under a
concurrent writer, PG 15 and 18."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, Writer, models_source

SCORE = 'sa.Column("score", sa.BigInteger, nullable=False, server_default=sa.text("0"))'
EXTRA = [
    'sa.Index("items_status_idx", "status")',
    'sa.Index("items_score_idx", "score")',
    'sa.Index("items_qty_high_score_idx", "qty", postgresql_where=sa.text("score > 5"))',
]


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db)
    with psycopg.connect(p.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE items ALTER COLUMN score SET DEFAULT 0")
        conn.execute("ALTER TABLE items ALTER COLUMN score SET NOT NULL")
        conn.execute("CREATE INDEX items_score_idx ON items (score)")
        conn.execute("CREATE INDEX items_qty_high_score_idx ON items (qty) WHERE score > 5")
    return p


def _shape(project: Project) -> tuple[str, str, str | None, list[str]]:
    with psycopg.connect(project.url) as conn:
        row = conn.execute(
            "SELECT data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_name = 'items' AND column_name = 'score'"
        ).fetchone()
        assert row is not None
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'items' AND indexdef ~ 'score' ORDER BY indexname"
        ).fetchall()]
    return row[0], row[1], row[2], indexes


def test_type_change_keeps_not_null_default_and_indexes(project: Project) -> None:
    project.write_models(models_source({"score": SCORE}, EXTRA))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_score_idx__new ON public.items USING btree (score__new)" in upgrade
    assert "WHERE (score__new > 5)" in upgrade
    assert "score__new" in upgrade and "NOT NULL" in upgrade
    assert upgrade.index("items_score_idx__new") < upgrade.index("RENAME COLUMN score__new TO score")
    before = _shape(project)
    assert before[:3] == ("integer", "NO", "0")
    writer = Writer(project.url)
    writer.start()
    time.sleep(0.3)
    try:
        project.alembic("upgrade", "head")
    finally:
        time.sleep(0.3)
        writer.stop()
    assert not writer.errors, writer.errors[:5]
    assert writer.longest < 2.0, writer.longest
    after = _shape(project)
    assert after[:3] == ("bigint", "NO", "0")
    assert after[3] == [
        "CREATE INDEX items_qty_high_score_idx ON public.items USING btree (qty) WHERE (score > 5)",
        "CREATE INDEX items_score_idx ON public.items USING btree (score)",
    ]
    assert project.alembic("check", check=False).returncode == 0
    project.alembic("downgrade", "-1", env={"HELIOS_ALLOW_DATA_LOSS": "1"})
    assert _shape(project) == before
