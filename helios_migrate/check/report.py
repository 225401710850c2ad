"""The result of one ``check`` run, as every output format receives it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..findings import DOCS_BASE_URL, Finding, Severity
from ..versions import PgVersion


@dataclass(frozen=True)
class RuleInfo:
    """What an output format says about a rule (SARIF ``tool.driver.rules``)."""

    code: str
    name: str
    summary: str
    description: str = ""
    severity: Severity = Severity.WARNING
    url: str = ""
    """The rule's documentation page (default: the project's page for the code)."""

    @property
    def doc_url(self) -> str:
        return self.url or f"{DOCS_BASE_URL}{self.code.lower()}-{self.name}"


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    """Sorted by path, line, column and code."""
    pg_version: PgVersion
    pg_version_source: str
    fail_on: Severity
    revisions: int = 0
    sql_files: int = 0
    statements: int = 0
    sources: Mapping[str, str] = field(default_factory=dict)
    """File text by the path findings use, for code frames."""
    rules: tuple[RuleInfo, ...] = ()

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= self.fail_on)

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def inputs_phrase(self) -> str:
        parts = []
        if self.revisions or not self.sql_files:
            parts.append(_plural(self.revisions, "revision"))
        if self.sql_files:
            parts.append(_plural(self.sql_files, "SQL file"))
        return " and ".join(parts)

    def severity_phrase(self) -> str:
        """``2 errors, 1 warning`` (only the severities present)."""
        parts = [
            _plural(self.count(sev), str(sev))
            for sev in (Severity.ERROR, Severity.WARNING, Severity.INFO)
            if self.count(sev)
        ]
        return ", ".join(parts)

    def summary_line(self) -> str:
        version = f"PostgreSQL {self.pg_version} ({self.pg_version_source})"
        if not self.findings:
            return f"No findings in {self.inputs_phrase()}; {version}."
        verdict = (
            f"{len(self.blocking)} at or above {self.fail_on}"
            if self.blocking else f"none at or above {self.fail_on}"
        )
        return (
            f"Found {_plural(len(self.findings), 'finding')} ({self.severity_phrase()}; {verdict}) "
            f"in {self.inputs_phrase()}; {version}."
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sort_key(f: Finding) -> tuple[str, int, int, str, str]:
    return (f.location.path, f.location.line, f.location.column, f.code, f.message)
