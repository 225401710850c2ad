"""The engine: parsing, locations, transaction context, table facts, configuration, suppressions."""

from __future__ import annotations

from helios_migrate.changes import QualifiedName
from helios_migrate.config import Config, RuleSelection, TableLists
from helios_migrate.findings import Location, Severity
from helios_migrate.lint import (
    LintInput,
    SourceStatement,
    StaticTableFacts,
    TableSize,
    lint,
    lint_sql,
)
from helios_migrate.suppression import parse_python_suppressions
from helios_migrate.versions import PgVersion

V16 = PgVersion.parse("16")


def _codes(findings: list) -> list[tuple[int, str]]:  # type: ignore[type-arg]
    return [(f.location.line, f.code) for f in findings]


def test_sql_file_locations_and_statement_text() -> None:
    sql = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n\n  CREATE INDEX ix\n    ON orders (a);\n"
    [finding] = lint_sql(sql, "m.sql", config=Config(), version=V16)
    assert finding.code == "HM101"
    assert finding.location == Location("m.sql", 3, 3, 4, 17)
    assert finding.statement == "CREATE INDEX ix\n    ON orders (a)"
    assert finding.doc_url.endswith("hm101-create-index-non-concurrently")


def test_source_statement_offset_inside_a_file() -> None:
    src = SourceStatement("SELECT 1;\nDROP INDEX ix;", Location("m.sql", 5, 3))
    found = lint(LintInput("m.sql", (src,)), config=Config(), version=V16)
    assert {(f.location.line, f.location.column) for f in found if f.code == "HM102"} == {(6, 1)}


def test_syntax_error_points_at_the_error_and_the_rest_is_checked() -> None:
    sql = "SELECT 1;\nALTER TABEL orders ADD COLUMN x int;\nCREATE INDEX ix ON orders (a);\n"
    found = lint_sql(sql, "m.sql", config=Config(), version=V16)
    [error] = [f for f in found if f.code == "HM901"]
    assert (error.location.path, error.location.line, error.location.column) == ("m.sql", 2, 7)
    assert 'syntax error at or near "TABEL"' in error.message
    assert "HM101" in {f.code for f in found}


def test_never_raises_on_garbage() -> None:
    for sql in ("", ";;;", "$$", "CREATE", "\x00", "SELECT 'unterminated"):
        lint_sql(sql, "g.sql", config=Config(), version=V16)


def test_revision_statements_point_at_the_op_line_and_python_suppressions() -> None:
    source = (
        "def upgrade():\n"
        "    op.create_index('ix', 'orders', ['a'])  # helios: ignore[HM101]\n"
        "    op.drop_column('orders', 'b')\n"
    )
    statements = (
        SourceStatement("BEGIN", Location("rev.py", 1, 1), "abc123"),
        SourceStatement("SET lock_timeout = '2s'", Location("rev.py", 1, 1), "abc123"),
        SourceStatement("SET statement_timeout = '30s'", Location("rev.py", 1, 1), "abc123"),
        SourceStatement("CREATE INDEX ix ON orders (a)", Location("rev.py", 2, 5, 2, 43), "abc123"),
        SourceStatement("ALTER TABLE orders DROP COLUMN b", Location("rev.py", 3, 5, 3, 34), "abc123"),
        SourceStatement("UPDATE alembic_version SET version_num='abc123' WHERE alembic_version.version_num = 'x'",
                        Location("rev.py", 3, 5), "abc123"),
        SourceStatement("COMMIT", Location("rev.py", 1, 1), "abc123"),
    )
    found = lint(
        LintInput("rev.py", statements, parse_python_suppressions(source)),
        config=Config(), version=V16,
    )
    assert _codes(found) == [(3, "HM303")]
    assert all(f.revision == "abc123" for f in found)
    assert found[0].location == Location("rev.py", 3, 5, 3, 34)


def test_table_facts_in_messages() -> None:
    facts = StaticTableFacts({"public.orders": TableSize(48 * 1024**3, 310_000_000)})
    found = lint_sql(
        "ALTER TABLE orders ADD COLUMN x uuid DEFAULT gen_random_uuid();", "m.sql",
        config=Config(), version=V16, facts=facts,
    )
    [rewrite] = [f for f in found if f.code == "HM201"]
    assert "rewrites orders (48 GB, ~310M rows)" in rewrite.message


def test_static_table_facts_lookup() -> None:
    facts = StaticTableFacts({"orders": TableSize(1, 2), "billing.invoices": TableSize(3, 4)})
    assert facts.table_size(QualifiedName("orders", "public")) == TableSize(1, 2)
    assert facts.table_size(QualifiedName("invoices")) == TableSize(3, 4)
    assert facts.table_size(QualifiedName("invoices", "billing")) == TableSize(3, 4)
    assert facts.table_size(QualifiedName("missing")) is None


def test_selection_and_disabled_rule_suppressions() -> None:
    config = Config(rules=RuleSelection(select=("HM1",), ignore=("HM102",)))
    sql = "DROP INDEX ix; -- helios: ignore[HM102]\nALTER TABLE t ADD COLUMN c int;\nCREATE INDEX i ON t (a);"
    found = lint_sql(sql, "m.sql", config=config, version=V16)
    # HM102 is disabled: its ignore is not reported unused, and HM4xx findings are not selected.
    assert _codes(found) == [(3, "HM101")]


def test_hot_tables_raise_blocking_findings_only() -> None:
    config = Config(tables=TableLists(hot=("users",)))
    found = lint_sql("ALTER TABLE users RENAME COLUMN a TO b;", "m.sql", config=config, version=V16)
    by_code = {f.code: f for f in found}
    assert by_code["HM301"].severity is Severity.WARNING  # compatibility: not raised
    assert by_code["HM401"].severity is Severity.ERROR  # lock queue: raised
    assert "users is configured hot" in by_code["HM401"].message


def test_wrapped_transaction_and_set_local() -> None:
    sql = "SET LOCAL lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;"
    wrapped = lint(
        LintInput("m.sql", (SourceStatement(sql, Location("m.sql", 1, 1)),), in_transaction=True),
        config=Config(), version=V16,
    )
    plain = lint_sql(sql, "m.sql", config=Config(), version=V16)
    assert "HM401" not in {f.code for f in wrapped}
    assert "HM401" in {f.code for f in plain}  # SET LOCAL outside a block has no effect


def test_file_level_ignore_without_codes() -> None:
    sql = "-- helios: ignore-file\nDROP TABLE t;\nCREATE INDEX i ON t (a);"
    assert lint_sql(sql, "m.sql", config=Config(), version=V16) == []
