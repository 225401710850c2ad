"""The review-rule protocol: a rule module with ``review(ctx)`` and no ``check``, and its failures."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from helios_migrate.changes import QualifiedName
from helios_migrate.config import Config
from helios_migrate.findings import Severity
from helios_migrate.review import engine
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind
from helios_migrate.rules import Rule, RuleLoadError
from helios_migrate.schema_model import Schema, SchemaSource, Table
from helios_migrate.versions import PgVersion


def _module(review: object) -> types.ModuleType:
    module = types.ModuleType("acme_rules.wide_tables")
    module.__doc__ = "Tables reviewed by a rule package.\n"
    module.CODE, module.NAME, module.SEVERITY, module.KIND = "ACME601", "wide-tables", Severity.INFO, RuleKind.OTHER
    module.review = review
    return module


def _every_table(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in ctx.schema.tables:
        yield SchemaViolation(f"{table.name} reviewed", table=table.name)


def _broken(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    raise RuntimeError("boom")


SCHEMA = Schema(SchemaSource.MODELS, tables=(Table(QualifiedName("t"), primary_key=("id",)),), label="m:md")


def test_a_module_with_review_and_no_check_is_a_rule_that_checks_no_statement() -> None:
    rule = Rule.from_module(_module(_every_table))
    assert rule.review is _every_table
    assert list(rule.check(None)) == []  # type: ignore[arg-type]
    with pytest.raises(RuleLoadError, match="review must be a function"):
        Rule.from_module(_module("not callable"))


def test_review_runs_package_rules_and_a_failing_rule_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = (Rule.from_module(_module(_every_table)), Rule.from_module(_module(_broken)))
    monkeypatch.setattr(engine, "registered_rules", lambda: rules)
    result = engine.review_schema(SCHEMA, Config(), PgVersion.parse("16"))
    found = sorted((rf.finding.code, rf.finding.message) for rf in result.findings)
    assert found[0] == ("ACME601", "t reviewed")
    assert found[1][0] == "HM903" and "ACME601 wide-tables failed: RuntimeError('boom')" in found[1][1]
