"""The review rules that read a live server's statistics (PostgreSQL 15 and 18): unused indexes
(HM608), nullable columns that hold no NULL (HM609), money as float (HM610), and foreign keys on
large tables without an ON DELETE decision (HM611)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import timedelta

import psycopg

from helios_migrate.config import Config
from helios_migrate.review.engine import ReviewFinding, ReviewResult, review_schema
from helios_migrate.schema_catalog import read_schema
from helios_migrate.schema_model import Schema, schema_from_changes
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion


def _read(url: str) -> Schema:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.read_only = True
        return read_schema(conn, label="test")


def _review(schema: Schema) -> ReviewResult:
    return review_schema(schema, Config(), PgVersion.parse(schema.server_version_num or 180000))


def _by(result: ReviewResult, code: str) -> dict[str, ReviewFinding]:
    return {rf.finding.location.path: rf for rf in result.findings if rf.finding.code == code}


def _wait_for_scans(url: str, index: str) -> None:
    """Index scan counters reach the statistics views after the backend flushes them."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (index,)).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)
    raise AssertionError(f"{index}: no scan counted")


def test_unused_index(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE accounts (id bigint PRIMARY KEY);
            CREATE TABLE users (
                id bigint PRIMARY KEY, email text NOT NULL, nick text, city text,
                account_id bigint REFERENCES accounts (id)
            );
            INSERT INTO accounts SELECT generate_series(1, 10);
            INSERT INTO users SELECT g, 'u' || g || '@x', 'n' || g, 'c' || (g % 50), g % 10 + 1
              FROM generate_series(1, 20000) g;
            CREATE INDEX users_email_idx ON users (email);
            CREATE INDEX users_city_idx ON users (city);
            CREATE UNIQUE INDEX users_nick_key ON users (nick);
            CREATE INDEX users_account_id_idx ON users (account_id);
            ANALYZE users;
        """)
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # a query that uses users_email_idx
        plan = conn.execute("EXPLAIN SELECT id FROM users WHERE email = 'u5@x'").fetchall()
        assert "users_email_idx" in str(plan)
        assert conn.execute("SELECT id FROM users WHERE email = 'u5@x'").fetchone() == (5,)
    _wait_for_scans(fresh_db, "users_email_idx")

    schema = _read(fresh_db)
    unused = _by(_review(schema), "HM608")
    # used, unique, and the only index serving a foreign key: not reported
    assert set(unused) == {"public.users.city"}, unused
    city = unused["public.users.city"]
    assert str(city.finding.severity) == "info"  # a fresh server: statistics cover minutes
    assert "users_city_idx (city)" in city.finding.message and "kB" in city.finding.message
    assert "has not been scanned since 20" in city.finding.message
    assert "every read replica" in city.finding.help and "less than 7 days" in city.finding.help
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.users_city_idx" in city.finding.help
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_city_idx ON public.users (city)" in city.finding.help

    # A statistics window of a month: a warning.
    assert schema.observed_at is not None
    older = dataclasses.replace(schema, stats_since=schema.observed_at - timedelta(days=30))
    city = _by(_review(older), "HM608")["public.users.city"]
    assert str(city.finding.severity) == "warning" and "(30 days ago)" in city.finding.message


def test_nullable_never_null(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE parcels (id bigint PRIMARY KEY, carrier text, note text, weight integer NOT NULL);
            INSERT INTO parcels SELECT g, 'post', CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' END, g
              FROM generate_series(1, 20000) g;
            CREATE TABLE small (id bigint PRIMARY KEY, carrier text);
            INSERT INTO small SELECT g, 'post' FROM generate_series(1, 100) g;
            CREATE TABLE unanalysed (id bigint PRIMARY KEY, carrier text);
            ANALYZE parcels, small;
        """)
    never_null = _by(_review(_read(fresh_db)), "HM609")
    assert set(never_null) == {"public.parcels.carrier"}, never_null
    rf = never_null["public.parcels.carrier"]
    assert str(rf.finding.severity) == "info" and "holds no NULL" in rf.finding.message
    assert rf.fix is not None
    sql = " ".join(s for step in rf.fix.steps for s in step.sql)
    assert "NOT VALID" in sql and "VALIDATE" in sql  # the lock-safe path, never a plain scan under lock

    # The fix, run as printed: with a NULL present the validation fails, and the undo of the
    # steps that ran leaves the table as it was; without one the column becomes NOT NULL.
    attnotnull = (
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'parcels'::regclass AND attname = 'carrier'"
    )
    helper = "SELECT count(*) FROM pg_constraint WHERE conname = 'parcels_carrier_not_null'"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO parcels VALUES (0, NULL, NULL, 0)")
        done = []
        with contextlib.suppress(psycopg.errors.IntegrityError):
            for step in rf.fix.steps:
                with conn.transaction():
                    for statement in step.sql:
                        conn.execute(statement)
                done.append(step)
        assert len(done) < len(rf.fix.steps)  # the validation failed
        for step in reversed(done):
            for statement in step.inverse or ():
                conn.execute(statement)
        assert conn.execute(attnotnull).fetchone() == (False,) and conn.execute(helper).fetchone() == (0,)
        conn.execute("INSERT INTO parcels VALUES (-1, NULL, NULL, 0)")  # NULL still accepted
        conn.execute("DELETE FROM parcels WHERE id <= 0")
        for step in rf.fix.steps:
            with conn.transaction():
                for statement in step.sql:
                    conn.execute(statement)
        assert conn.execute(attnotnull).fetchone() == (True,)
        with contextlib.suppress(psycopg.errors.NotNullViolation), conn.transaction():
            conn.execute("INSERT INTO parcels VALUES (-2, NULL, NULL, 0)")
            raise AssertionError("NULL accepted after SET NOT NULL")


MONEY_SQL = """
CREATE TABLE invoices (
    id bigint PRIMARY KEY,
    total_amount double precision NOT NULL,
    "unitPrice" real,
    latitude double precision,
    priceless boolean,
    tax numeric(12, 2)
);
"""


def test_money_as_float_on_models_and_live(fresh_db: str) -> None:
    expected = {"public.invoices.total_amount", "public.invoices.unitPrice"}
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(MONEY_SQL)
    live = _by(_review(_read(fresh_db)), "HM610")
    assert set(live) == expected, live
    models = schema_from_changes(changes_from_sql(MONEY_SQL))
    on_models = _by(review_schema(models, Config(), PgVersion.parse("18")), "HM610")
    assert {p.rsplit(".", 1)[-1] for p in on_models} == {"total_amount", "unitPrice"}
    assert "numeric(p, s)" in live["public.invoices.total_amount"].finding.help


def test_on_delete_undecided_only_on_large_tables(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE accounts (id bigint PRIMARY KEY);
            CREATE TABLE logins (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));
            CREATE TABLE notes (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));
            CREATE TABLE audits (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id) ON DELETE CASCADE);
            CREATE INDEX ON logins (account_id);
            CREATE INDEX ON notes (account_id);
            CREATE INDEX ON audits (account_id);
            INSERT INTO accounts SELECT generate_series(1, 100);
            INSERT INTO logins SELECT g, g % 100 + 1 FROM generate_series(1, 120000) g;
            INSERT INTO audits SELECT g, g % 100 + 1 FROM generate_series(1, 120000) g;
            INSERT INTO notes SELECT g, g % 100 + 1 FROM generate_series(1, 50) g;
            ANALYZE;
        """)
    undecided = _by(_review(_read(fresh_db)), "HM611")
    # notes and accounts are small; audits decided (CASCADE)
    assert set(undecided) == {"public.logins.account_id"}, undecided
    assert "no ON DELETE action" in undecided["public.logins.account_id"].finding.message


BLOAT_SQL = """
CREATE TABLE events (id bigint PRIMARY KEY, payload text, n integer);
CREATE TABLE calm (id bigint PRIMARY KEY, payload text);
INSERT INTO events SELECT g, md5(g::text), g FROM generate_series(1, 600000) g;
INSERT INTO calm SELECT g, md5(g::text) FROM generate_series(1, 400000) g;
DELETE FROM events WHERE id % 4 <> 0;
"""


def test_bloat_estimate_and_concurrent_reindex(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BLOAT_SQL)
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE calm")
    bloat = _by(_review(_read(fresh_db)), "HM612")
    # the table (75% free after the delete) and its primary key index; a freshly loaded table and
    # its index, built in order, are not
    assert set(bloat) == {"public.events", "public.events.id"}, bloat
    table = bloat["public.events"].finding.message
    assert "free space" in table and "(7" in table  # ~75%
    assert bloat["public.events"].fix is None and "pg_repack" in bloat["public.events"].finding.help
    index = bloat["public.events.id"]
    assert "events_pkey" in index.finding.message
    assert "REINDEX INDEX CONCURRENTLY public.events_pkey" in index.finding.help
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        before = conn.execute("SELECT pg_relation_size('events_pkey')").fetchone()
        assert index.fix is not None
        for step in index.fix.steps:
            for statement in step.sql:
                conn.execute(statement)
        after = conn.execute("SELECT pg_relation_size('events_pkey')").fetchone()
        conn.execute("ANALYZE events")
    assert before is not None and after is not None and after[0] < before[0] / 2
    assert "public.events.id" not in _by(_review(_read(fresh_db)), "HM612")


def test_timestamp_and_json_advice_comes_from_the_hm5xx_rules(fresh_db: str) -> None:
    """``timestamp`` without time zone and ``json`` are the column-type rules of check (HM504,
    HM506), asked of every live column: review has no second rule for them."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit (id bigint PRIMARY KEY, at timestamp NOT NULL, payload json, "
                     "fine timestamptz, doc jsonb)")
    result = _review(_read(fresh_db))
    assert set(_by(result, "HM504")) == {"public.audit.at"}
    assert set(_by(result, "HM506")) == {"public.audit.payload"}
    assert "autogenerate plan the type change" in _by(result, "HM504")["public.audit.at"].finding.help
