"""The result of one ``check`` run, as every output format receives it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..findings import DOCS_BASE_URL, Finding, Severity
from ..versions import PgVersion

REPOSITORY_DOCS_URL = "https://github.com/helios-migrate/helios-migrate/blob/main/docs/rules/"
"""Where the built-in rules' pages are by default: ``docs/rules/`` of the repository, generated
from the rule docstrings (``--docs-url`` or ``HELIOS_DOCS_URL`` point elsewhere, e.g. an internal
mirror)."""


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


class RenderState(str, enum.Enum):
    """How a revision's statements were obtained."""

    RENDERED = "rendered"
    """Rendered to offline SQL, as ``alembic upgrade --sql`` would."""
    RENDERED_WITH_PLACEHOLDERS = "rendered_with_placeholders"
    """Rendered, with inert placeholders for modules that are not installed (or an Alembic
    plugin's operation that is not installed, noted as unknown)."""
    READ_FROM_SOURCE = "read_from_source"
    """Could not be rendered; its ``op.*`` calls were read from the Python source (HM904)."""
    NOT_PARSED = "not_parsed"
    """Not valid Python (HM901): nothing was checked."""


@dataclass(frozen=True)
class RevisionState:
    """What ``check`` could do with one revision file."""

    path: str
    revision: str | None
    state: RenderState
    detail: str = ""
    """Why it was not rendered, or what stood in for what (placeholders, unknown operations)."""
    statements_through_connection: int = 0


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
    revision_states: tuple[RevisionState, ...] = ()
    notes: tuple[str, ...] = ()
    """Things the user should know about the run itself (a lone revision file, a skipped path)."""
    show_info: bool = False
    """``--show-info``: people-facing formats list info findings too."""
    quiet: bool = False
    """``--quiet``: people-facing formats list only findings at or above ``fail_on``."""
    docs_base_url: str = REPOSITORY_DOCS_URL
    """Where the built-in rules' pages live (``<base><code>-<name>.md``)."""

    def state_counts(self) -> dict[str, int]:
        """Revisions by :class:`RenderState` value, every state present (zero included)."""
        counts = {state.value: 0 for state in RenderState}
        for rev in self.revision_states:
            counts[rev.state.value] += 1
        return counts

    def shown(self) -> tuple[Finding, ...]:
        """The findings text, Markdown and GitHub output list (JSON and SARIF list all):
        info findings only with ``--show-info``; with ``--quiet``, only blocking ones."""
        if self.quiet:
            return self.blocking
        if self.show_info:
            return self.findings
        return tuple(f for f in self.findings if f.severity is not Severity.INFO)

    @property
    def hidden(self) -> int:
        return len(self.findings) - len(self.shown())

    def doc_url(self, code: str, name: str, default: str = "") -> str:
        """A rule's documentation page: under ``docs_base_url`` for the built-in rules; a rule
        package's own page (its ``DOC_URL``) otherwise."""
        if default and not default.startswith(DOCS_BASE_URL):
            return default
        return f"{self.docs_base_url.rstrip('/')}/{code.lower()}-{name}.md"

    def finding_url(self, f: Finding) -> str:
        own = next((r.url for r in self.rules if r.code == f.code and r.url), "")
        return self.doc_url(f.code, f.rule, own)

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

    def rendering_phrase(self) -> str:
        """``120 rendered, 3 with placeholders, 2 read from source`` when not all were rendered."""
        counts = self.state_counts()
        if not self.revision_states or counts[RenderState.RENDERED.value] == len(self.revision_states):
            return ""
        parts = [f"{counts[RenderState.RENDERED.value]} rendered"]
        for state, words in (
            (RenderState.RENDERED_WITH_PLACEHOLDERS, "with placeholders for missing modules"),
            (RenderState.READ_FROM_SOURCE, "read from source"),
            (RenderState.NOT_PARSED, "not valid Python"),
        ):
            if counts[state.value]:
                parts.append(f"{counts[state.value]} {words}")
        return ", ".join(parts)

    def summary_line(self) -> str:
        version = f"PostgreSQL {self.pg_version} ({self.pg_version_source})"
        rendering = self.rendering_phrase()
        inputs = self.inputs_phrase() + (f" ({rendering})" if rendering else "")
        if not self.findings:
            return f"No findings in {inputs}; {version}."
        verdict = (
            f"{len(self.blocking)} at or above {self.fail_on}"
            if self.blocking else f"none at or above {self.fail_on}"
        )
        hidden = self.hidden
        shown = "" if not hidden else (
            f"; {hidden} not listed: --show-info lists info findings" if not self.quiet
            else f"; {hidden} below {self.fail_on} not listed (--quiet)"
        )
        return (
            f"Found {_plural(len(self.findings), 'finding')} ({self.severity_phrase()}; {verdict}{shown}) "
            f"in {inputs}; {version}."
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sort_key(f: Finding) -> tuple[str, int, int, str, str]:
    return (f.location.path, f.location.line, f.location.column, f.code, f.message)
