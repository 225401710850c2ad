"""Markdown for a pull-request comment: a verdict, counts by rule, then the findings.

A comment must stay under GitHub's 65,536-character limit, so the report summarises: the table of
counts always, then the first findings in full (message, statement, fix, link), the rest one line
each, and "and N more" when even that would not fit (:data:`MAX_CHARS`).  Info findings are listed
only with ``--show-info``; with ``--quiet``, only blocking ones.
"""

from __future__ import annotations

from collections import Counter

from ...findings import Finding, Severity
from ..report import CheckReport

MAX_CHARS = 60_000
"""The report's size limit, below GitHub's comment limit with room for a wrapper's text."""
FULL_DETAILS = 40
"""How many findings at most are shown in full before the rest become one line each."""
_ICON = {Severity.ERROR: "🛑", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}  # noqa: RUF001
_MAX_SQL = 1_500


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _where(f: Finding) -> str:
    return f"{f.location.path}:{f.location.line}" if f.location.line else f.location.path


def _head(report: CheckReport) -> list[str]:
    out = ["## helios-migrate check", ""]
    version = f"PostgreSQL {report.pg_version} ({report.pg_version_source})"
    rendering = report.rendering_phrase()
    inputs = report.inputs_phrase() + (f" ({rendering})" if rendering else "")
    if not report.findings:
        return [*out, f"✅ No findings in {inputs}. {version}.", ""]
    verdict = "❌" if report.blocking else "✅"
    out += [
        f"{verdict} **{report.severity_phrase()}** in {inputs} "
        f"({len(report.blocking)} at or above `{report.fail_on}`). {version}.",
        "",
        "| Severity | Code | Rule | Findings |",
        "| --- | --- | --- | ---: |",
    ]
    counts = Counter((f.severity, f.code, f.rule) for f in report.findings)
    for (severity, code, rule), n in sorted(counts.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        url = report.doc_url(code, rule, next((r.url for r in report.rules if r.code == code), ""))
        out.append(f"| {_ICON[severity]} {severity} | [{code}]({url}) | {_cell(rule)} | {n} |")
    out.append("")
    if report.hidden:
        out += [f"{report.hidden} finding(s) below the listing threshold are counted above but not listed "
                "(`--show-info` lists info findings; JSON and SARIF list everything).", ""]
    out += [f"> {note}" for note in report.notes]
    return out


def _full(f: Finding, url: str) -> list[str]:
    out = [
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
        sql = f.statement.strip()
        if len(sql) > _MAX_SQL:
            sql = sql[:_MAX_SQL] + "\n-- ... (statement shortened)"
        out += ["```sql", sql, "```", ""]
    if f.help:
        out += [f"**How to fix:** {f.help.strip()}", ""]
    out += [f"[Rule documentation]({url})", "", "</details>", ""]
    return out


def _line(f: Finding, url: str) -> str:
    return f"- {_ICON[f.severity]} [{f.code}]({url}) `{_cell(_where(f))}`: {_cell(f.message)}"


def render_markdown(report: CheckReport, max_chars: int = MAX_CHARS) -> str:
    out = _head(report)
    shown = report.shown()
    if not shown:
        return "\n".join(out)
    size = sum(len(line) + 1 for line in out)
    tail_reserve = 200
    out += ["### Findings", ""]
    listed = 0
    for f in shown[:FULL_DETAILS]:
        block = _full(f, report.finding_url(f))
        block_size = sum(len(line) + 1 for line in block)
        if size + block_size > max_chars * 3 // 4:
            break
        out += block
        size += block_size
        listed += 1
    if listed < len(shown):
        out.append("")
    for f in shown[listed:]:
        line = _line(f, report.finding_url(f))
        if size + len(line) + 1 > max_chars - tail_reserve:
            break
        out.append(line)
        size += len(line) + 1
        listed += 1
    if listed < len(shown):
        out += ["", f"… and {len(shown) - listed} more (run `helios-migrate check --format json` for every finding)."]
    out.append("")
    return "\n".join(out)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
