"""HM602's arithmetic on a schema built by hand: range, limiting type, and the run-out date."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from helios_migrate.changes import QualifiedName
from helios_migrate.config import Config
from helios_migrate.review.engine import review_schema
from helios_migrate.schema_model import Column, Schema, SchemaSource, SequenceState, Table
from helios_migrate.versions import PgVersion

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
EVENTS = QualifiedName("events", "public")


def _schema(last_value: int, *, inserts: int | None, window: timedelta) -> Schema:
    return Schema(
        source=SchemaSource.DATABASE,
        tables=(Table(EVENTS, columns=(Column("id", "integer", nullable=False),), primary_key=("id",), inserts=inserts),),
        sequences=(SequenceState(QualifiedName("events_id_seq", "public"), "bigint", 2**63 - 1, 1, last_value,
                                 owned_by=(EVENTS, "id")),),
        stats_since=NOW - window, observed_at=NOW, server_version_num=160000,
    )


def _hm602(schema: Schema) -> list[str]:
    result = review_schema(schema, Config(), PgVersion.parse("16"))
    return [rf.finding.message for rf in result.findings if rf.finding.code == "HM602"]


def test_run_out_date_from_the_insert_rate() -> None:
    # 947,483,647 values left at 100 inserts/s (86,400,000 inserts over 10 days): ~109.7 days
    (message,) = _hm602(_schema(1_200_000_000, inserts=86_400_000, window=timedelta(days=10)))
    assert "at 55.9% of its range" in message
    assert "at the current 100.0 inserts/s (since 2026-11-21)" in message
    assert "runs out around 2027-03-20" in message


def test_no_date_from_a_short_statistics_window_or_without_inserts() -> None:
    (message,) = _hm602(_schema(1_500_000_000, inserts=500, window=timedelta(minutes=5)))
    assert "cover only 5 min" in message and "runs out around" not in message
    (message,) = _hm602(_schema(1_500_000_000, inserts=0, window=timedelta(days=3)))
    assert "runs out" not in message


def test_below_the_threshold_nothing() -> None:
    assert _hm602(_schema(1_000_000_000, inserts=None, window=timedelta(days=1))) == []


def test_run_out_date_from_a_live_insert_rate(fresh_db: str) -> None:
    """On a live server: the insert count comes from pg_stat_user_tables and the key's position
    from the sequence; the statistics window of a server started minutes ago is too short for a
    date (said so), and over a day's window the date follows from the rate."""
    import dataclasses

    import psycopg

    from helios_migrate.schema_catalog import read_schema

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, kind text)")
        conn.execute("INSERT INTO events (kind) SELECT 'a' FROM generate_series(1, 1000)")
        conn.execute("SELECT setval('events_id_seq', 1500000000)")
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        schema = read_schema(conn)
    events = schema.table(QualifiedName("events", "public"))
    assert events is not None and events.inserts == 1000
    assert schema.observed_at is not None and schema.stats_since is not None
    (message,) = _hm602(schema)
    assert "1,500,000,000 of 2,147,483,647" in message
    if schema.observed_at - schema.stats_since < timedelta(hours=1):
        assert "too little to project when it runs out" in message
    day = dataclasses.replace(schema, stats_since=schema.observed_at - timedelta(days=1))
    (message,) = _hm602(day)
    expected = schema.observed_at + timedelta(seconds=(2_147_483_647 - 1_500_000_000) / (1000 / 86400))
    assert "at the current 1,000 inserts/day" in message  # under 0.1/s: per day, not "0.0 inserts/s"
    assert f"runs out around {expected:%Y-%m-%d}" in message
    hour = dataclasses.replace(schema, stats_since=schema.observed_at - timedelta(hours=1))
    (message,) = _hm602(hour)
    assert "at the current 0.3 inserts/s" in message
