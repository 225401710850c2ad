"""The rule engine as ``check`` uses it: configuration, suppressions, linting, rule metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, load_config
from ..findings import Finding, Severity
from ..lint import LintInput, SourceStatement, lint
from ..rule_context import StaticTableFacts
from ..rule_context import TableSize as RuleTableSize
from ..rules import registered_rules
from ..suppression import Suppression, parse_python_suppressions, parse_sql_suppressions
from ..versions import PgVersion
from .live import TableSize
from .problems import CheckUsageError
from .report import RuleInfo

__all__ = [
    "Config",
    "LintInput",
    "SourceStatement",
    "Suppression",
    "lint_statements",
    "read_config",
    "registered_rules",
    "rule_infos",
]


def read_config(start: Path) -> Config:
    """``[tool.helios-migrate]`` from the nearest pyproject.toml at or above ``start``."""
    try:
        return load_config(start=start)
    except ConfigError as exc:
        raise CheckUsageError(str(exc)) from None


def config_pg_version(config: Config) -> PgVersion | None:
    return config.pg_version


def config_fail_on(config: Config) -> Severity:
    return config.fail_on


def configure_finding(config: Config, finding: Finding) -> Finding | None:
    """Apply rule selection and severity overrides to a finding ``check`` itself makes."""
    if not config.rule_enabled(finding.code):
        return None
    severity = config.severity_for(finding.code, finding.severity)
    finding = replace(finding, rule=registered_name(finding.code, finding.rule))
    return finding if severity is finding.severity else replace(finding, severity=severity)


def python_suppressions(source: str, path: str, lines: tuple[int, int] | None) -> tuple[Suppression, ...]:
    """Suppression comments of a revision file; with ``lines``, only those inside that span (and
    file-level ones), so an ignore in ``downgrade()`` is not reported unused when only
    ``upgrade()`` is checked."""
    if "helios" not in source.lower():
        return ()  # no comment can name us: skip tokenizing the file
    found = parse_python_suppressions(source)
    if lines is None:
        return found
    first, last = lines
    return tuple(
        s for s in found
        if _line_of(s) is None or first - 1 <= (_line_of(s) or 0) <= last
    )


def sql_suppressions(source: str) -> tuple[Suppression, ...]:
    return parse_sql_suppressions(source)


def _line_of(s: Suppression) -> int | None:
    return None if s.file_level else s.line


def lint_statements(
    path: str,
    statements: Sequence[SourceStatement],
    suppressions: Sequence[Suppression],
    *,
    config: Config,
    version: PgVersion,
    catalog: Any = None,
    facts: Any = None,
) -> list[Finding]:
    found: list[Finding] = lint(
        LintInput(path, tuple(statements), tuple(suppressions)),
        config=config,
        version=version,
        catalog=catalog,
        facts=facts,
    )
    return found


def table_facts(sizes: Iterable[TableSize]) -> StaticTableFacts:
    """The engine's table facts from sizes read on a live server."""
    return StaticTableFacts(
        {
            str(t.table): RuleTableSize(size_bytes=t.total_bytes, rows=t.row_estimate)
            for t in sizes
        }
    )


def rule_infos() -> tuple[RuleInfo, ...]:
    """Every registered rule with its documentation, for SARIF ``tool.driver.rules``."""
    return tuple(
        RuleInfo(rule.code, rule.name, rule.summary or rule.name, rule.doc.strip(), rule.severity, rule.doc_url)
        for rule in registered_rules()
    )


def registered_name(code: str, default: str) -> str:
    """The registry's name for ``code`` (tool findings ``check`` makes itself use it)."""
    return next((rule.name for rule in registered_rules() if rule.code == code), default)


