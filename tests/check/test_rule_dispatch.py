"""The engine calls a rule only for the change kinds it declares (``CHANGES``): declaring them must
never change what is reported.  Every rule fixture is linted twice, once with the dispatch and once
with every rule called on every change, and the findings must be the same."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helios_migrate.changes import AddColumn, Change, CreateIndex, DropIndex, RawStatement
from helios_migrate.findings import Location
from helios_migrate.lint import LintInput, SourceStatement, lint
from helios_migrate.rules import Rule, RuleLoadError, registered_rules
from helios_migrate.suppression import parse_sql_suppressions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from fixture_cases import Case, load_cases

CASES = list(load_cases())


def _lint(case: Case) -> list[object]:
    path = f"fixtures/{case.file}"
    return list(
        lint(
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
    )


def test_dispatch_reports_what_calling_every_rule_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched = [_lint(case) for case in CASES]
    monkeypatch.setattr(Rule, "looks_at", lambda self, kind: True)
    everywhere = [_lint(case) for case in CASES]
    assert len(CASES) > 100
    for case, a, b in zip(CASES, dispatched, everywhere, strict=True):
        assert a == b, case.id


def test_a_rule_declaring_kinds_is_only_asked_about_them() -> None:
    rules = {r.code: r for r in registered_rules()}
    create_index = rules["HM101"]
    assert create_index.looks_at(CreateIndex)
    assert not create_index.looks_at(DropIndex)
    assert not create_index.looks_at(AddColumn)
    assert rules["HM401"].changes is None  # the timeout rules judge every statement's locks
    assert rules["HM401"].looks_at(RawStatement)
    assert rules["HM904"].changes == ()  # reported by the check command, never per change


def test_changes_must_be_change_classes() -> None:
    import types

    from helios_migrate.findings import Severity
    from helios_migrate.rule_context import RuleKind

    module = types.ModuleType("acme_rule")
    module.CODE, module.NAME = "ACME101", "acme-rule"  # type: ignore[attr-defined]
    module.SEVERITY, module.KIND = Severity.WARNING, RuleKind.OTHER  # type: ignore[attr-defined]
    module.check = lambda ctx: ()  # type: ignore[attr-defined]
    module.CHANGES = ("CreateIndex",)  # type: ignore[attr-defined]
    with pytest.raises(RuleLoadError, match="CHANGES must be a tuple"):
        Rule.from_module(module)
    module.CHANGES = (CreateIndex, Change)  # type: ignore[attr-defined]
    assert Rule.from_module(module).looks_at(AddColumn)
