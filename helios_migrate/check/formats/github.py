"""GitHub Actions workflow commands: one annotation per finding on the pull request's diff."""

from __future__ import annotations

from ...findings import Finding, Severity
from ..report import CheckReport

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (GitHub's ``escapeProperty``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding, doc_url: str | None = None) -> str:
    props = [f"file={escape_property(f.location.path)}"]
    if f.location.line:
        props.append(f"line={f.location.line}")
        if f.location.end_line > f.location.line:
            props.append(f"endLine={f.location.end_line}")
        if f.location.column:
            props.append(f"col={f.location.column}")
            if f.location.end_column and f.location.end_line in (0, f.location.line):
                props.append(f"endColumn={f.location.end_column}")
    props.append(f"title={escape_property(f'{f.code} {f.rule}')}")
    body = f.message
    if f.help:
        body += "\n" + f.help.strip()
    body += f"\n{doc_url or f.doc_url}"
    return f"::{_COMMAND[f.severity]} {','.join(props)}::{escape_data(body)}"


def render_github(report: CheckReport) -> str:
    lines = [annotation(f, report.finding_url(f)) for f in report.shown()]
    lines += [f"::notice::{escape_data(note)}" for note in report.notes]
    lines.append(report.summary_line())
    return "\n".join(lines) + "\n"
