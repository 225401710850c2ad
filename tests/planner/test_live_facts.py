"""``LiveFacts`` answers the whole ``PlannerFacts`` interface from a real server (PostgreSQL 15
and 18), and the planner asks it directly: no attribute probing, ``None`` only when unknown."""

from __future__ import annotations

import psycopg
import pytest

from helios_migrate.changes import QualifiedName
from helios_migrate.facts import DatabaseFacts, ServerFacts, TableFacts
from helios_migrate.planner import (
    LiveFacts,
    PlannerFacts,
    PlanPolicy,
    PlanRefused,
    UnknownFacts,
    plan_changes,
    planner_facts,
)
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion

SETUP = """
CREATE TABLE keyed (id bigint PRIMARY KEY, code text NOT NULL, note text DEFAULT 'n');
CREATE UNIQUE INDEX keyed_code_idx ON keyed (code);
CREATE INDEX keyed_note_idx ON keyed (note);
CREATE TABLE by_unique (a int NOT NULL, b int NOT NULL, c int);
CREATE UNIQUE INDEX by_unique_c_idx ON by_unique (c);
CREATE UNIQUE INDEX by_unique_ab_idx ON by_unique (a, b);
CREATE TABLE keyless (a int, b text);
CREATE TABLE parted (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO keyed SELECT g, 'c' || g FROM generate_series(1, 2000) g;
ANALYZE keyed;
"""


def test_live_facts_answer_every_question(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SETUP)
        facts: PlannerFacts = LiveFacts(conn)
        q = QualifiedName
        assert facts.has_rows(q("keyed")) is True and facts.has_rows(q("keyless")) is False
        assert facts.has_rows(q("missing")) is None
        assert facts.row_estimate(q("keyed")) == 2000
        assert facts.primary_key(q("keyed")) == ("id",)
        assert facts.batch_key(q("keyed")) == ("id",)
        assert facts.batch_key(q("by_unique")) == ("a", "b")  # c is nullable
        assert facts.batch_key(q("keyless")) == ()  # known to have none
        assert facts.batch_key(q("missing")) is None
        assert facts.partitions(q("parted")) == (q("parted_a", "public"), q("parted_b", "public"))
        assert facts.partitions(q("keyed")) is None
        assert facts.index_columns(q("by_unique_ab_idx")) == ("a", "b")
        assert facts.index_columns(q("missing_idx")) is None
        assert facts.covering_index(q("keyed"), ["code"]) == "keyed_code_idx"
        details = facts.column_details(q("keyed"), "note")
        assert (details.known, details.not_null, details.default) == (True, False, "'n'::text")
        assert details.indexes == (("keyed_note_idx", "CREATE INDEX keyed_note_idx ON public.keyed USING btree (note)"),)
        assert not facts.column_details(q("keyed"), "missing").known
        assert facts.column_dependents(q("keyed"), "id").primary_key


def test_keyless_table_is_refused_with_what_to_add(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute("INSERT INTO keyless VALUES (1, 'x')")
        with pytest.raises(PlanRefused, match="no primary key and no unique index on NOT NULL columns") as refused:
            plan_changes(changes_from_sql("ALTER TABLE keyless ADD COLUMN n float8 DEFAULT random()"),
                         PgVersion(18, 0), facts=LiveFacts(conn))
        assert "CREATE UNIQUE INDEX CONCURRENTLY" in str(refused.value)


def test_catalog_facts_of_an_impact_estimate_give_row_estimates() -> None:
    table = TableFacts(name=QualifiedName("small", "public"), row_estimate=10, pages=1)
    facts = DatabaseFacts(server=ServerFacts(PgVersion(18, 0)), tables=(table,))
    adapted = planner_facts(facts)
    assert isinstance(adapted, UnknownFacts)
    assert adapted.row_estimate(QualifiedName("small", "public")) == 10
    plan = plan_changes(changes_from_sql("ALTER TABLE public.small ALTER COLUMN a SET NOT NULL"), PgVersion(18, 0),
                        facts=facts, policy=PlanPolicy(small_table_rows=100))
    (step,) = plan.steps  # below the threshold: the plain form
    assert step.sql == ("ALTER TABLE public.small ALTER COLUMN a SET NOT NULL",)
