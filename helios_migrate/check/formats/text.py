"""Human-readable findings: location, code, message, a frame of the source with a caret, the fix."""

from __future__ import annotations

import re

from ...findings import Finding
from ..report import CheckReport

MAX_FRAME_LINES = 6
MAX_SQL_CHARS = 240


def render_text(report: CheckReport) -> str:
    """Every error and warning (only blocking ones with ``--quiet``; info with ``--show-info``),
    then notes about the run and the summary line."""
    blocks = [_finding_block(f, report.sources.get(f.location.path), report.finding_url(f)) for f in report.shown()]
    blocks += [f"note: {note}" for note in report.notes]
    blocks.append(report.summary_line())
    return "\n\n".join(blocks) + "\n"


def _finding_block(f: Finding, source: str | None, doc_url: str) -> str:
    loc = f.location
    where = loc.path
    if loc.line:
        where += f":{loc.line}:{loc.column or 1}"
    lines = [f"{where}: {f.code} [{f.severity}] {' '.join(f.message.split())}"]
    frame = code_frame(source, f) if source is not None and loc.line else []
    lines += frame
    gutter = " " * (_gutter_width(f) + 1)
    if f.statement and not loc.path.endswith(".sql"):
        lines.append(f"{gutter}= sql: {_one_line(f.statement)}")
    if f.revision:
        lines.append(f"{gutter}= revision: {f.revision}")
    if f.help:
        help_lines = f.help.strip().splitlines()
        lines.append(f"{gutter}= help: {help_lines[0]}")
        lines += [f"{gutter}        {h}".rstrip() for h in help_lines[1:]]
    lines.append(f"{gutter}= docs: {doc_url} ({f.rule})")
    return "\n".join(lines)


def _gutter_width(f: Finding) -> int:
    last = max(f.location.line, min(f.location.end_line, f.location.line + MAX_FRAME_LINES - 1))
    return len(str(last))


def code_frame(source: str, f: Finding) -> list[str]:
    """The finding's source lines with line numbers and a caret under the start column."""
    loc = f.location
    src_lines = source.splitlines()
    if not 1 <= loc.line <= len(src_lines):
        return []
    last = loc.end_line if loc.end_line >= loc.line else loc.line
    shown_last = min(last, loc.line + MAX_FRAME_LINES - 1, len(src_lines))
    width = _gutter_width(f)
    pad = " " * width
    out = [f"{pad} |"]
    for n in range(loc.line, shown_last + 1):
        text = src_lines[n - 1].expandtabs(4).rstrip()
        out.append(f"{n:>{width}} | {text}")
        if n == loc.line:
            first = src_lines[loc.line - 1].expandtabs(4)
            start = (loc.column - 1) if loc.column else len(first) - len(first.lstrip())
            start = max(0, min(start, len(first.rstrip())))
            if last == loc.line and loc.end_column > loc.column > 0:
                stop = min(loc.end_column - 1, len(first.rstrip()))
            else:
                stop = len(first.rstrip())
            out.append(f"{pad} | {' ' * start}{'^' * max(1, stop - start)}")
    if shown_last < last:
        out.append(f"{pad} | ...")
    return out


def _one_line(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    return text if len(text) <= MAX_SQL_CHARS else text[: MAX_SQL_CHARS - 3] + "..."
