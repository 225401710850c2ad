"""Snapshot tests of every output format, from a fixed report (independent of rule wording)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from check_helpers import assert_snapshot

from helios_migrate.check.formats import OutputFormat, render
from helios_migrate.check.formats.github import escape_data, escape_property
from helios_migrate.check.report import CheckReport, RuleInfo
from helios_migrate.findings import Finding, Location, Severity
from helios_migrate.versions import PgVersion

REVISION_PY = '''\
"""add score"""
from alembic import op
import sqlalchemy as sa

revision = "2b1f0c9d"
down_revision = "1a0e9b8c"


def upgrade() -> None:
    op.add_column("orders", sa.Column("score", sa.Float(), server_default=sa.text("random()")))
    op.create_index(
        "ix_orders_customer",
        "orders",
        ["customer_id"],
    )
'''

SQL_FILE = """\
-- backfill, 50% of the rows, in one go
UPDATE orders SET flag = true, note = 'a,b:c';
ALTER TABLE orders ALTER COLUMN flag SET NOT NULL;
"""

RULES = (
    RuleInfo("HM101", "create-index-non-concurrently", "CREATE INDEX without CONCURRENTLY blocks writes.",
             "Building an index without CONCURRENTLY takes a SHARE lock: writes wait for the whole build.",
             Severity.ERROR),
    RuleInfo("HM201", "add-column-volatile-default", "A volatile default rewrites the table.",
             "ADD COLUMN with a volatile DEFAULT rewrites the table under ACCESS EXCLUSIVE.", Severity.ERROR),
    RuleInfo("HM205", "set-not-null-scan", "SET NOT NULL scans the table.",
             "SET NOT NULL scans every row under ACCESS EXCLUSIVE.", Severity.WARNING),
)


def _report(findings: tuple[Finding, ...] | None = None) -> CheckReport:
    rev = "migrations/versions/2b1f0c9d_add_score.py"
    sql = "sql/0007 backfill.sql"
    if findings is None:
        findings = (
            Finding("HM205", "set-not-null-scan", Severity.WARNING,
                    "SET NOT NULL on orders scans all ~310M rows under ACCESS EXCLUSIVE",
                    Location(sql, 3, 1, 3, 50),
                    help="Add CHECK (flag IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL.",
                    statement="ALTER TABLE orders ALTER COLUMN flag SET NOT NULL"),
            Finding("HM404", "dml-without-where", Severity.INFO,
                    "UPDATE of every row of orders (50%, \"flag\"),\nin one transaction",
                    Location(sql, 2, 1, 2, 46),
                    help="Backfill in batches.",
                    statement="UPDATE orders SET flag = true, note = 'a,b:c'"),
            Finding("HM201", "add-column-volatile-default", Severity.ERROR,
                    "rewrites orders: 48 GB, ~310M rows (volatile default random())",
                    Location(rev, 10, 5, 10, 95),
                    help="Add the column without a default, then backfill in batches:\n"
                         "ALTER TABLE orders ADD COLUMN score float8;",
                    statement="ALTER TABLE orders ADD COLUMN score FLOAT DEFAULT random()",
                    revision="2b1f0c9d"),
            Finding("HM101", "create-index-non-concurrently", Severity.ERROR,
                    "CREATE INDEX on orders blocks writes for the whole build",
                    Location(rev, 11, 5, 15, 6),
                    help="Use op.create_index(..., postgresql_concurrently=True) inside "
                         "op.get_context().autocommit_block().",
                    statement="CREATE INDEX ix_orders_customer ON orders (customer_id)",
                    revision="2b1f0c9d"),
        )
    return CheckReport(
        findings=tuple(sorted(findings, key=lambda f: (f.location.path, f.location.line))),
        pg_version=PgVersion(15, 4),
        pg_version_source="--pg-version",
        fail_on=Severity.ERROR,
        revisions=1,
        sql_files=1,
        statements=4,
        sources={rev: REVISION_PY, sql: SQL_FILE},
        rules=RULES,
    )


SNAPSHOT_NAMES = {
    OutputFormat.TEXT: "report.txt",
    OutputFormat.JSON: "report.json",
    OutputFormat.SARIF: "report.sarif",
    OutputFormat.GITHUB: "report.github.txt",
    OutputFormat.MARKDOWN: "report.md",
}


@pytest.mark.parametrize("output_format", list(OutputFormat), ids=[f.value for f in OutputFormat])
def test_format_snapshot(output_format: OutputFormat) -> None:
    assert_snapshot(SNAPSHOT_NAMES[output_format], render(_report(), output_format))


@pytest.mark.parametrize("output_format", list(OutputFormat), ids=[f.value for f in OutputFormat])
def test_clean_report_snapshot(output_format: OutputFormat) -> None:
    assert_snapshot(f"clean.{SNAPSHOT_NAMES[output_format]}", render(_report(()), output_format))


def test_sarif_validates_against_the_official_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    for report in (_report(), _report(())):
        doc = json.loads(render(report, OutputFormat.SARIF))
        jsonschema.validate(doc, schema, cls=jsonschema.Draft4Validator,
                            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
        driver = doc["runs"][0]["tool"]["driver"]
        ids = [r["id"] for r in driver["rules"]]
        for result in doc["runs"][0]["results"]:
            assert ids[result["ruleIndex"]] == result["ruleId"]
            uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            assert not uri.startswith("/") and "\\" not in uri


def test_sarif_rule_metadata_comes_from_the_registry() -> None:
    """``check`` describes each rule that has results once, with the registry's own name, its
    documentation as help, and its page under the docs base URL."""
    from dataclasses import replace

    from helios_migrate.check.engine import rule_infos
    from helios_migrate.rules import registered_rules

    unregistered = Finding("ACME101", "house-style", Severity.INFO, "plural table name; rename it",
                           Location("sql/0007 backfill.sql", 1, 1))
    report = _report()
    report = replace(report, findings=(*report.findings, unregistered), rules=rule_infos())
    text = render(report, OutputFormat.SARIF)
    doc = json.loads(text)
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    registry = {rule.code: rule for rule in registered_rules()}
    assert len(registry) > 40
    found = {f.code for f in report.findings}
    # A finding whose code the registry lacks gets an entry made from the finding.
    assert set(rules) == found
    for code in found - {"ACME101"}:
        rule, entry = registry[code], rules[code]
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["help"]["markdown"] == rule.doc.strip()
        assert entry["helpUri"] == f"{report.docs_base_url}{code.lower()}-{rule.name}.md"
        # The rule's documentation is written once in the whole document.
        assert text.count(json.dumps(rule.doc.strip())[1:-1]) == 1
    results = doc["runs"][0]["results"]
    assert all(r["ruleId"] == doc["runs"][0]["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] for r in results)
    assert rules["ACME101"]["name"] == "house-style"
    assert rules["ACME101"]["shortDescription"]["text"] == "plural table name"


def test_github_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"
    from dataclasses import replace

    out = render(replace(_report(), show_info=True), OutputFormat.GITHUB)
    line = next(ln for ln in out.splitlines() if "HM404" in ln)
    assert line.startswith("::notice file=sql/0007 backfill.sql,line=2,col=1,endColumn=46,")
    assert "%0Ain one transaction" in line and "\n" not in line


def test_exit_code_follows_the_threshold() -> None:
    report = _report()
    assert report.exit_code == 1
    only_warnings = _report(tuple(f for f in report.findings if f.severity < Severity.ERROR))
    assert only_warnings.exit_code == 0
    from dataclasses import replace

    assert replace(only_warnings, fail_on=Severity.WARNING).exit_code == 1
    assert replace(only_warnings, fail_on=Severity.INFO).exit_code == 1
