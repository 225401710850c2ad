"""Partitioned tables: an index is built partition by partition (CONCURRENTLY is refused on the
parent), a foreign key is planned for the server version (NOT VALID on a partitioned table only
from 18).  Real PostgreSQL 15 and 18, through autogenerate."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from autogen_harness import Project, models_source

EVENTS_SQL = """
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, parent_id bigint, v integer)
    PARTITION BY RANGE (at);
CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE events_2021 PARTITION OF events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
INSERT INTO events SELECT g, DATE '2020-01-01' + (g % 700), g % 1000 + 1, g FROM generate_series(1, 20000) g;
"""
EVENTS = (
    'events = sa.Table("events", metadata, sa.Column("id", sa.BigInteger, nullable=False), '
    'sa.Column("at", sa.Date, nullable=False), sa.Column("parent_id", sa.BigInteger{fk}), '
    'sa.Column("v", sa.Integer){extra}, postgresql_partition_by="RANGE (at)")\n'
)
INCLUDE = '''
def include_object(obj, name, type_, reflected, compare_to):
    # Partitions are managed with their parent, outside the models.
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (table is not None and table.name.startswith("events_"))
'''


@pytest.fixture
def project(tmp_path: Path, fresh_db: str) -> Project:
    p = Project.create(tmp_path / "proj", fresh_db, rows=1000)
    with psycopg.connect(p.url, autocommit=True) as conn:
        conn.execute(EVENTS_SQL)
        conn.execute("VACUUM ANALYZE events")
    env = (p.root / "env.py").read_text()
    env = env.replace("def run_migrations_online():", INCLUDE + "\n\ndef run_migrations_online():").replace(
        "target_metadata=models.metadata,\n            autogenerate_plugins",
        "target_metadata=models.metadata,\n            include_object=include_object,\n            autogenerate_plugins",
    )
    (p.root / "env.py").write_text(env)
    p.write_models(models_source(tables=EVENTS.format(fk="", extra="")))
    return p


def test_index_and_foreign_key_on_a_partitioned_table(project: Project) -> None:
    v2 = EVENTS.format(
        fk=', sa.ForeignKey("parents.id", name="events_parent_id_fkey")',
        extra=', sa.Index("events_v_idx", "v")',
    )
    project.write_models(models_source(tables=v2))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "ON ONLY events" in upgrade and "CONCURRENTLY" in upgrade
    assert "ATTACH PARTITION" in upgrade
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_v_idx'::regclass"
        ).fetchone()
        children = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events_v_idx'::regclass"
        ).fetchone()
        fk = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'events_parent_id_fkey' "
            "AND conrelid = 'events'::regclass"
        ).fetchone()
    assert valid == (True,) and children == (2,) and fk == (True,)
    with pytest.raises(psycopg.errors.ForeignKeyViolation), psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("INSERT INTO events VALUES (1, '2020-05-05', 99999, 1)")
    project.alembic("downgrade", "-1")
    with psycopg.connect(project.url) as conn:
        left = conn.execute("SELECT to_regclass('events_v_idx')").fetchone()
    assert left == (None,)


def test_dropping_an_index_of_a_partitioned_table(project: Project) -> None:
    """DROP INDEX CONCURRENTLY is refused on a partitioned index: the plan drops it plainly in a
    short transaction, and the downgrade builds it again."""
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute("CREATE INDEX events_v_idx ON events (v)")
    project.write_models(models_source(tables=EVENTS.format(fk="", extra=', sa.Index("events_v_idx", "v")')))
    assert "No new upgrade operations" in project.alembic("check").stdout
    project.write_models(models_source(tables=EVENTS.format(fk="", extra="")))
    revision = project.autogenerate()
    upgrade = revision.split("def downgrade")[0]
    assert "DROP INDEX IF EXISTS events_v_idx" in upgrade and "DROP INDEX CONCURRENTLY" not in upgrade
    project.alembic("upgrade", "head")
    with psycopg.connect(project.url) as conn:
        assert conn.execute("SELECT to_regclass('events_v_idx')").fetchone() == (None,)
    project.alembic("downgrade", "-1")
    with psycopg.connect(project.url) as conn:
        assert conn.execute("SELECT to_regclass('events_v_idx') IS NOT NULL").fetchone() == (True,)
