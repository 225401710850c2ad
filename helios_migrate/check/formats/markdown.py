"""Markdown for a pull-request comment: a verdict, a summary table, then details per finding."""

from __future__ import annotations

from ...findings import Finding, Severity
from ..report import CheckReport

_ICON = {Severity.ERROR: "🛑", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}  # noqa: RUF001


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _where(f: Finding) -> str:
    return f"{f.location.path}:{f.location.line}" if f.location.line else f.location.path


def render_markdown(report: CheckReport) -> str:
    out = ["## helios-migrate check", ""]
    version = f"PostgreSQL {report.pg_version} ({report.pg_version_source})"
    if not report.findings:
        out += [f"✅ No findings in {report.inputs_phrase()}. {version}.", ""]
        return "\n".join(out)
    verdict = "❌" if report.blocking else "✅"
    out += [
        f"{verdict} **{report.severity_phrase()}** in {report.inputs_phrase()} "
        f"({len(report.blocking)} at or above `{report.fail_on}`). {version}.",
        "",
        "| | Code | Rule | Location | Message |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in report.findings:
        out.append(
            f"| {_ICON[f.severity]} {f.severity} | [{f.code}]({f.doc_url}) | {_cell(f.rule)} "
            f"| `{_cell(_where(f))}` | {_cell(f.message)} |"
        )
    out += ["", "### Details", ""]
    for f in report.findings:
        out += [
            "<details>",
            f"<summary>{_ICON[f.severity]} <b>{f.code}</b> {_html(f.rule)} — "
            f"<code>{_html(_where(f))}</code></summary>",
            "",
            f.message,
            "",
        ]
        if f.revision:
            out += [f"Revision `{f.revision}`.", ""]
        if f.statement:
            out += ["```sql", f.statement.strip(), "```", ""]
        if f.help:
            out += [f"**How to fix:** {f.help.strip()}", ""]
        out += [f"[Rule documentation]({f.doc_url})", "", "</details>", ""]
    return "\n".join(out)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
