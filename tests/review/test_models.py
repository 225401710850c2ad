"""Review of SQLAlchemy models (no database): each rule on small MetaData, positive and negative."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from helios_migrate.config import Config, config_from_mapping
from helios_migrate.review.engine import ReviewResult, review_schema
from helios_migrate.schema_model import schema_from_metadata
from helios_migrate.versions import PgVersion

PG16 = PgVersion.parse("16")


def _review(metadata: sa.MetaData, config: Config | None = None) -> ReviewResult:
    return review_schema(schema_from_metadata(metadata), config or Config(), PG16)


def _found(metadata: sa.MetaData, config: Config | None = None) -> set[tuple[str, str]]:
    return {(rf.finding.code, rf.finding.location.path) for rf in _review(metadata, config).findings}


def _good_parent(m: sa.MetaData) -> sa.Table:
    return sa.Table("customers", m, sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True))


def test_a_well_designed_schema_has_no_findings() -> None:
    m = sa.MetaData()
    _good_parent(m)
    sa.Table(
        "orders", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", postgresql.JSONB),
    )
    assert _found(m) == set()


def test_table_without_primary_key() -> None:
    m = sa.MetaData()
    sa.Table("audit_log", m, sa.Column("message", sa.Text, nullable=False))
    assert ("HM601", "audit_log") in _found(m)


def test_table_without_primary_key_with_a_unique_not_null_column_gets_a_lock_safe_fix() -> None:
    m = sa.MetaData()
    sa.Table("flags", m, sa.Column("code", sa.Text, nullable=False, unique=True))
    (rf,) = [rf for rf in _review(m).findings if rf.finding.code == "HM601"]
    assert rf.fix is not None
    assert "USING INDEX" in rf.finding.help and "CONCURRENTLY" in rf.finding.help, rf.finding.help


def test_foreign_key_without_index_carries_the_concurrent_index_plan() -> None:
    m = sa.MetaData()
    _good_parent(m)
    sa.Table(
        "orders", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id", ondelete="CASCADE")),
    )
    (rf,) = [rf for rf in _review(m).findings if rf.finding.code == "HM603"]
    assert rf.column == "customer_id"
    assert "ON DELETE CASCADE" in rf.finding.message
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);" in rf.finding.help
    assert "DROP INDEX CONCURRENTLY IF EXISTS orders_customer_id_idx;" in rf.finding.help
    assert "index=True" in rf.finding.help


def test_a_composite_index_leading_with_the_foreign_key_serves_it_a_trailing_one_does_not() -> None:
    m = sa.MetaData()
    _good_parent(m)
    lines = sa.Table(
        "lines", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id")),
        sa.Column("position", sa.Integer),
    )
    sa.Index("lines_position_customer_id_idx", lines.c.position, lines.c.customer_id)
    assert ("HM603", "lines.customer_id") in _found(m)
    sa.Index("lines_customer_id_position_idx", lines.c.customer_id, lines.c.position)
    assert ("HM603", "lines.customer_id") not in _found(m)


def test_foreign_key_type_mismatch_and_serial_counts_as_integer() -> None:
    m = sa.MetaData()
    _good_parent(m)
    sa.Table("small", m, sa.Column("id", sa.Integer, primary_key=True))  # serial
    sa.Table(
        "refs", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
        sa.Column("small_id", sa.Integer, sa.ForeignKey("small.id"), index=True),
    )
    found = _found(m)
    assert ("HM604", "refs.customer_id") in found
    assert ("HM604", "refs.small_id") not in found


def test_duplicate_and_redundant_indexes() -> None:
    m = sa.MetaData()
    t = sa.Table(
        "visits", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("site_id", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Index("visits_site_idx", t.c.site_id)
    sa.Index("visits_site_seen_idx", t.c.site_id, t.c.seen_at)
    sa.Index("visits_site_seen_idx2", t.c.site_id, t.c.seen_at)
    sa.Index("visits_recent_site_idx", t.c.site_id, postgresql_where=t.c.seen_at > sa.text("'2026-01-01'"))
    found = _found(m)
    assert ("HM605", "visits") in found  # the two-column pair
    assert ("HM606", "visits.site_id") in found  # visits_site_idx, not the partial one
    findings = _review(m).findings
    dup = next(rf for rf in findings if rf.finding.code == "HM605")
    assert "visits_site_seen_idx2" in dup.finding.message and "DROP INDEX CONCURRENTLY" in dup.finding.help
    redundant = [rf for rf in findings if rf.finding.code == "HM606"]
    assert len(redundant) == 1 and "visits_site_idx " in redundant[0].finding.message


def test_unique_and_constraint_indexes_are_never_redundant() -> None:
    m = sa.MetaData()
    t = sa.Table(
        "accounts", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
    )
    sa.Index("accounts_id_email_idx", t.c.id, t.c.email)
    sa.Index("accounts_email_lower_idx", t.c.email, sa.text("lower(email)"))
    codes = {code for code, _ in _found(m)}
    assert "HM606" not in codes and "HM605" not in codes


def test_column_types_reuse_the_schema_design_rules() -> None:
    m = sa.MetaData()
    sa.Table(
        "events", m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime),
        sa.Column("code", sa.CHAR(3)),
        sa.Column("payload", sa.JSON),
    )
    found = _found(m)
    for expected in [("HM501", "events.id"), ("HM502", "events.id"), ("HM504", "events.at"),
                     ("HM505", "events.code"), ("HM506", "events.payload")]:
        assert expected in found
    assert not any(code.startswith("HM6") for code, _ in found if code != "HM601")


def test_ignores_per_table_and_column_and_unused_ones_are_reported() -> None:
    m = sa.MetaData()
    sa.Table("audit_log", m, sa.Column("at", sa.DateTime), sa.Column("msg", sa.Text))
    config = config_from_mapping(
        {"review": {"ignore": ["HM601:audit_log", "HM504:audit_log.at", "HM603:nowhere"]}}
    )
    result = _review(m, config)
    assert [rf.finding.code for rf in result.findings] == []
    assert {str(entry) for _, entry in result.suppressed} == {"HM601:audit_log", "HM504:audit_log.at"}
    assert [str(entry) for entry in result.unused_ignores] == ["HM603:nowhere"]
    # a column ignore does not cover another column of the table
    config = config_from_mapping({"review": {"ignore": ["HM504:audit_log.msg"]}})
    assert "HM504" in {rf.finding.code for rf in _review(m, config).findings}


def test_rule_selection_and_severity_apply() -> None:
    m = sa.MetaData()
    sa.Table("audit_log", m, sa.Column("msg", sa.Text))
    config = config_from_mapping({"rules": {"ignore": ["HM6"]}})
    assert _found(m, config) == set()
    config = config_from_mapping({"rules": {"severity": {"HM601": "error"}}})
    (rf,) = _review(m, config).findings
    assert str(rf.finding.severity) == "error"


def test_names_that_need_quoting_match_their_indexes_and_are_quoted_in_fixes() -> None:
    m = sa.MetaData()
    _good_parent(m)
    t = sa.Table(
        "Order Lines", m,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("Customer Id", sa.BigInteger, sa.ForeignKey("customers.id")),
        sa.Column("user", sa.BigInteger, sa.ForeignKey("customers.id")),
    )
    sa.Index("ix_user", t.c.user)
    (rf,) = [rf for rf in _review(m).findings if rf.finding.code == "HM603"]
    assert rf.column == "Customer Id"
    assert 'ON "Order Lines" ("Customer Id");' in rf.finding.help
