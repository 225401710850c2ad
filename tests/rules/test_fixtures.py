"""Every case of every ``tests/rules/fixtures/HMxxx.sql`` file (see fixture_cases.py)."""

from __future__ import annotations

import pytest
from fixture_cases import Case, load_cases

from helios_migrate.findings import Location
from helios_migrate.lint import LintInput, SourceStatement, lint
from helios_migrate.rules import registered_rules
from helios_migrate.suppression import parse_sql_suppressions

RULES = registered_rules()

CASES = list(load_cases())


def _lint(case: Case) -> list:  # type: ignore[type-arg]
    path = f"fixtures/{case.file}"
    return lint(
        LintInput(
            path,
            (SourceStatement(case.sql, Location(path, 1, 1)),),
            parse_sql_suppressions(case.sql),
            in_transaction=case.in_transaction,
        ),
        config=case.config(),
        version=case.version(),
        catalog=case.catalog(),  # type: ignore[arg-type]
        facts=case.table_facts(),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture_case(case: Case) -> None:
    findings = _lint(case)
    shown = "\n".join(f"  {f.location.line}: {f.code} {f.severity} {f.message}" for f in findings)
    if case.expect_none:
        assert case.code not in {f.code for f in findings}, f"unexpected {case.code}:\n{shown}"
    assert case.expect or case.expect_none, f"{case.id}: no expect line"
    for code, severity in case.expect:
        matching = [f for f in findings if f.code == code]
        assert matching, f"expected {code}:\n{shown}"
        if severity is not None:
            assert severity in {f.severity for f in matching}, f"expected {code} {severity}:\n{shown}"
    own = [f for f in findings if f.code == case.code]
    if case.count is not None:
        assert len(own) == case.count, f"expected {case.count} {case.code}:\n{shown}"
    if case.message is not None:
        assert any(case.message in f.message for f in own), f"message {case.message!r} not in:\n{shown}"
    if case.help is not None:
        assert any(case.help in f.help for f in own), f"help {case.help!r} not in:\n" + "\n".join(f.help for f in own)


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    for rule in RULES:
        if rule.review is not None:
            continue  # it judges schemas, not statements: its cases are in tests/review
        cases = [c for c in CASES if c.code == rule.code]
        if not rule.revision_only:  # its positive cases are revisions (tests/check/alembic_forms)
            assert any(c.code in {code for code, _ in c.expect} for c in cases), f"{rule.code}: no positive case"
        assert any(c.expect_none for c in cases), f"{rule.code}: no negative case"
