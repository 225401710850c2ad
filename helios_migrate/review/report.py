"""The result of one ``review`` run, and its output formats (text, JSON, SARIF, Markdown).

JSON and SARIF share ``check``'s finding and rule shapes, so the tools that read ``check``'s
reports (code scanning, dashboards) read these too.  The JSON document (``schema_version`` 1;
fields are only ever added)::

    {"schema_version": 1, "tool": {"name", "version"}, "command": "review", "source": "models"|"database",
     "reviewed": "<label>", "pg_version", "findings": [{<check's finding fields>, "table", "column_name",
     "fix": [{"sql", "transaction", "undo"}]}], "suppressed": [{"code", "subject", "ignore"}],
     "unused_ignores": [...], "summary": {"findings", "error", "warning", "info", "fail_on", "failed"}}

With ``--explain``, each finding also has ``"explanation"`` (the LLM's paragraph, or ``null``) and
the document an ``"explain": {"model", "explained"}`` block; nothing else changes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..check.engine import rule_infos
from ..check.formats.json_report import finding_to_json
from ..check.formats.sarif import render_sarif
from ..check.report import REPOSITORY_DOCS_URL, CheckReport
from ..findings import Finding, Severity
from ..schema_model import Schema
from ..versions import PgVersion
from .engine import FIX_HEADING, ReviewFinding, ReviewResult, render_fix
from .output_format import ReviewFormat


@dataclass(frozen=True)
class ReviewReport:
    result: ReviewResult
    schema: Schema
    pg_version: PgVersion
    pg_version_source: str
    fail_on: Severity
    show_info: bool = False
    docs_base_url: str = REPOSITORY_DOCS_URL
    extra_notes: tuple[str, ...] = ()
    """What the review could not read (value samples), for the notes."""
    explained: bool = False
    """``--explain`` was asked for (JSON then has an ``explanation`` per finding and an ``explain`` block)."""
    explanations: Mapping[int, str] = field(default_factory=dict)
    """Index in ``result.findings`` -> the LLM's paragraph (text only: it changes nothing else)."""
    explain_model: str = ""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(rf.finding for rf in self.result.findings)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= self.fail_on)

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0

    def shown(self) -> tuple[ReviewFinding, ...]:
        """Text and Markdown list info findings only with ``--show-info`` (JSON and SARIF list all)."""
        return tuple(
            rf for rf in self.result.findings if self.show_info or rf.finding.severity is not Severity.INFO
        )

    def as_check_report(self) -> CheckReport:
        return CheckReport(
            findings=self.findings, pg_version=self.pg_version, pg_version_source=self.pg_version_source,
            fail_on=self.fail_on, rules=rule_infos(), show_info=self.show_info, docs_base_url=self.docs_base_url,
        )

    def doc_url(self, f: Finding) -> str:
        return self.as_check_report().finding_url(f)

    def notes(self) -> list[str]:
        out = []
        if self.result.suppressed:
            out.append(f"{len(self.result.suppressed)} finding(s) suppressed by [tool.helios-migrate.review] ignore")
        out += [
            f"[tool.helios-migrate.review] ignore entry {str(entry)!r} suppresses nothing"
            for entry in self.result.unused_ignores
        ]
        return out + list(self.extra_notes)

    def summary_line(self) -> str:
        what = f"{len(self.schema.tables)} table(s) of {self.schema.label or self.schema.source.value}"
        version = f"PostgreSQL {self.pg_version} ({self.pg_version_source})"
        if not self.findings:
            return f"No findings in {what}; {version}."
        counts = Counter(f.severity for f in self.findings)
        phrase = ", ".join(f"{counts[s]} {s}" for s in (Severity.ERROR, Severity.WARNING, Severity.INFO) if counts[s])
        hidden = len(self.result.findings) - len(self.shown())
        more = f"; {hidden} info not listed: --show-info lists them" if hidden else ""
        return (
            f"Found {len(self.findings)} finding(s) ({phrase}; {len(self.blocking)} at or above "
            f"{self.fail_on}{more}) in {what}; {version}."
        )


def _explanation(report: ReviewReport, rf: ReviewFinding) -> str | None:
    index = next((i for i, other in enumerate(report.result.findings) if other is rf), None)
    return report.explanations.get(index) if index is not None else None


def explain_label(report: ReviewReport) -> str:
    return f"explained by {report.explain_model or 'the LLM'}, not checked"


def render_text(report: ReviewReport) -> str:
    blocks = []
    for rf in report.shown():
        f = rf.finding
        lines = [f"{f.location.path}: {f.code} [{f.severity}] {f.message}"]
        help_lines = f.help.strip().splitlines()
        if help_lines:
            lines.append(f"  = help: {help_lines[0]}")
            lines += [f"          {h}".rstrip() for h in help_lines[1:]]
        explanation = _explanation(report, rf)
        if explanation:
            lines.append(f"  = {explain_label(report)}: {explanation}")
        lines.append(f"  = docs: {report.doc_url(f)} ({f.rule})")
        blocks.append("\n".join(lines))
    blocks += [f"note: {note}" for note in report.notes()]
    blocks.append(report.summary_line())
    return "\n\n".join(blocks) + "\n"


def _fix_json(rf: ReviewFinding) -> list[dict[str, Any]]:
    if rf.fix is None:
        return []
    return [
        {"sql": list(step.sql), "transaction": step.transaction.value, "undo": list(step.inverse or ())}
        for step in rf.fix.steps
    ]


def report_to_json(report: ReviewReport) -> dict[str, Any]:
    counts = Counter(f.severity for f in report.findings)
    return {
        "schema_version": 1,
        "tool": {"name": "helios-migrate", "version": __version__},
        "command": "review",
        "source": report.schema.source.value,
        "reviewed": report.schema.label,
        "pg_version": str(report.pg_version),
        "pg_version_source": report.pg_version_source,
        "findings": [
            {
                **finding_to_json(rf.finding, report.doc_url(rf.finding)),
                "table": str(rf.table),
                "column_name": rf.column,
                "fix": _fix_json(rf),
                **({"explanation": report.explanations.get(i)} if report.explained else {}),
            }
            for i, rf in enumerate(report.result.findings)
        ],
        **({"explain": {"model": report.explain_model, "explained": len(report.explanations)}}
           if report.explained else {}),
        "suppressed": [
            {"code": rf.finding.code, "subject": rf.finding.location.path, "ignore": str(entry)}
            for rf, entry in report.result.suppressed
        ],
        "unused_ignores": [str(entry) for entry in report.result.unused_ignores],
        "summary": {
            "findings": len(report.findings),
            **{str(s): counts[s] for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)},
            "fail_on": str(report.fail_on),
            "failed": report.exit_code != 0,
        },
    }


def render_json(report: ReviewReport) -> str:
    return json.dumps(report_to_json(report), indent=2) + "\n"


def render_review_sarif(report: ReviewReport) -> str:
    """SARIF 2.1.0 as ``check`` writes it; each result's location is the table or column."""
    return render_sarif(report.as_check_report())


_ICON = {Severity.ERROR: "🛑", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}  # noqa: RUF001


def render_markdown(report: ReviewReport) -> str:
    out = ["## helios-migrate review", ""]
    if not report.findings:
        return "\n".join([*out, f"✅ {report.summary_line()}", ""])
    out += [
        f"{'❌' if report.blocking else '✅'} {report.summary_line()}",
        "",
        "| Severity | Code | Rule | Findings |",
        "| --- | --- | --- | ---: |",
    ]
    counts = Counter((f.severity, f.code, f.rule) for f in report.findings)
    for (severity, code, rule), n in sorted(counts.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        url = report.doc_url(next(f for f in report.findings if f.code == code))
        out.append(f"| {_ICON[severity]} {severity} | [{code}]({url}) | {rule} | {n} |")
    out.append("")
    out += [f"> {note}" for note in report.notes()]
    for rf in report.shown():
        f = rf.finding
        out += [f"### {_ICON[f.severity]} {f.code} `{f.location.path}`", "", f.message, ""]
        words = f.help.partition(FIX_HEADING)[0].strip()
        if words:
            out += [words, ""]
        explanation = _explanation(report, rf)
        if explanation:
            out += [f"> _{explain_label(report)}:_ {explanation}", ""]
        if rf.fix is not None and rf.fix.steps:
            out += ["```sql", render_fix(rf.fix, as_sql=True), "```", ""]
        out += [f"[{f.rule}]({report.doc_url(f)})", ""]
    return "\n".join(out)


RENDERERS: dict[ReviewFormat, Callable[[ReviewReport], str]] = {
    ReviewFormat.TEXT: render_text,
    ReviewFormat.JSON: render_json,
    ReviewFormat.SARIF: render_review_sarif,
    ReviewFormat.MARKDOWN: render_markdown,
}
