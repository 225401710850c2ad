"""A type change that keeps the table but rebuilds an index (``timestamp`` -> ``timestamptz`` with
the session in UTC) is planned as a long-lock step: expand/contract with the index built
CONCURRENTLY, never an in-place ALTER that rebuilds the index under ACCESS EXCLUSIVE.  The same
change on a column without an index stays a catalog-only ALTER.  PG 15 and 18."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, models_source

SEEN = 'sa.Column("seen", sa.DateTime(timezone=True))'
LAST = 'sa.Column("last", sa.DateTime(timezone=True))'


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=20_000)
    with psycopg.connect(p.url, autocommit=True) as conn:
        db = conn.execute("SELECT current_database()").fetchone()
        assert db is not None
        conn.execute(f'ALTER DATABASE "{db[0]}" SET timezone = \'UTC\'')
        conn.execute("ALTER TABLE items ADD COLUMN seen timestamp, ADD COLUMN last timestamp")
        conn.execute("UPDATE items SET seen = timestamp '2024-01-01' + id * interval '1 s', last = seen")
        conn.execute("CREATE INDEX items_seen_idx ON items (seen)")
        conn.execute("VACUUM ANALYZE items")
    p.write_models(models_source(
        {"seen": 'sa.Column("seen", sa.DateTime)', "last": 'sa.Column("last", sa.DateTime)'},
        ['sa.Index("items_status_idx", "status")', 'sa.Index("items_seen_idx", "seen")'],
    ))
    return p


def test_index_rebuilding_type_change_is_planned_as_long_lock_step(project: Project) -> None:
    project.write_models(models_source(
        {"seen": SEEN, "last": LAST},
        ['sa.Index("items_status_idx", "status")', 'sa.Index("items_seen_idx", "seen")'],
    ))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    # seen has an index whose operator class changes (timestamp_ops -> timestamptz_ops): no
    # in-place ALTER; a new column, its index built CONCURRENTLY, swapped later.
    assert "ALTER COLUMN seen TYPE" not in upgrade
    assert "seen__new" in upgrade
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_seen_idx__new" in upgrade
    # last has no index: catalog-only in UTC, one short ALTER.
    assert "'ALTER TABLE items ALTER COLUMN last TYPE timestamptz'" in upgrade
    assert "last__new" not in upgrade
