"""The verify report as text (rich), JSON and Markdown."""

from __future__ import annotations

import io
import json
import os
import shutil
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..effects import Effect
from .compare import Finding, Severity, predicted_locks
from .runner import RevisionResult, VerifyReport
from .trace import TracedStatement

_MAX_SQL = 90


def _short(sql: str, limit: int = _MAX_SQL) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _observed(st: TracedStatement) -> str:
    """Locks on tables first; locks on indexes and sequences no stronger than their table's are
    counted, not listed (the JSON report has every one)."""
    earlier = ", ".join(
        f"{m.sql_name} on {n}" for n, m in sorted(st.already_held.items())
        if n not in st.locks and n in predicted_locks(st.effects)
    )
    earlier = f"already held: {earlier}" if earlier else ""
    if not st.locks:
        return earlier or "no lock on existing relations"
    parts = []
    folded = 0
    for name, held in sorted(st.locks.items(), key=lambda kv: (-kv[1].mode, kv[0])):
        owner = st.locks.get(held.table or "") if held.kind in ("i", "I") else None
        if held.kind == "S" or (owner is not None and held.mode <= owner.mode):
            folded += 1
            continue
        parts.append(f"{held.mode.sql_name} on {name} ({_ms(held.held_s)})")
    if folded:
        parts.append(f"+{folded} on its indexes/sequences")
    return ", ".join(parts) + (f"; {earlier}" if earlier else "")


def _predicted(effects: list[Effect], error: str | None) -> str:
    if error:
        return error
    locks = predicted_locks(effects)
    if not locks and not effects:
        return "nothing"
    work = ", ".join(sorted({e.work.value for e in effects})) or "-"
    lk = ", ".join(f"{m.sql_name} on {n}" for n, m in sorted(locks.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{lk or 'no lock'}; {work}" + ("; rewrites table" if any(e.rewrites_table for e in effects) else "")


def statement_dict(st: TracedStatement) -> dict[str, Any]:
    return {
        "index": st.index,
        "phase": st.phase,
        "sql": st.sql,
        "duration_ms": round(st.duration_s * 1000, 2),
        "rows": st.rowcount,
        "in_transaction": st.in_transaction,
        "error": st.error,
        "predicted": {
            "error": st.prediction_error,
            "locks": {n: m.sql_name for n, m in predicted_locks(st.effects).items()},
            "work": sorted({e.work.value for e in st.effects}),
            "rewrites_table": any(e.rewrites_table for e in st.effects),
        },
        "observed": {
            "locks": {
                n: {"mode": h.mode.sql_name, "held_ms": round(h.held_s * 1000, 2), "waited": h.waited}
                for n, h in sorted(st.locks.items())
            },
            "rewritten": sorted(st.rewritten),
            "already_held": {n: m.sql_name for n, m in sorted(st.already_held.items())},
        },
        "write_stall_ms": None if st.write_stall_s is None else round(st.write_stall_s * 1000, 2),
        "read_stall_ms": None if st.read_stall_s is None else round(st.read_stall_s * 1000, 2),
    }


def to_json(report: VerifyReport) -> str:
    data = {
        "server": report.server,
        "version": report.version,
        "rows_per_table": report.rows,
        "project": report.project,
        "duration_s": round(report.duration_s, 3),
        "exit_code": report.exit_code,
        "errors": report.errors,
        "findings": [f.to_dict() for f in report.findings],
        "revisions": [
            {
                "revision": r.revision,
                "message": r.message,
                "parent": r.parent,
                "ok": r.ok,
                "steps": r.steps,
                "duration_s": round(r.duration_s, 3),
                "filled": [
                    {"table": f.table, "rows": f.rows, "wanted": f.wanted, "problem": f.problem}
                    for f in r.fills
                ],
                "statements": [statement_dict(s) for s in r.statements],
                "findings": [f.to_dict() for f in r.findings],
            }
            for r in report.revisions
        ],
    }
    return json.dumps(data, indent=2)


_ICON = {Severity.ERROR: "ERROR", Severity.WARNING: "warning", Severity.INFO: "info"}
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def _steps(r: RevisionResult) -> str:
    return ", ".join(f"{k} {v}" for k, v in r.steps.items()) or "not run"


def to_text(report: VerifyReport, *, color: bool = False, width: int = 120) -> str:
    buf = io.StringIO()

    if color:
        width = shutil.get_terminal_size((width, 24)).columns
    elif os.environ.get("COLUMNS", "").isdigit():
        width = max(80, int(os.environ["COLUMNS"]))
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width, highlight=False)
    console.print(
        f"helios-migrate verify: {len(report.revisions)} revision(s) on {report.server}, "
        f"PostgreSQL {report.version}, {report.rows:,} synthetic rows per table"
        + (", under load" if report.load else "")
    )
    for f in report.findings:
        console.print(Text(f"{_ICON[f.severity]}: {f.message}", style=_STYLE[f.severity]))
    for r in report.revisions:
        status = Text("ok", style="green") if r.ok else Text("FAILED", style="bold red")
        console.print()
        console.print(Text.assemble(f"{r.revision} ", (r.message or "", "bold"), "  ", status,
                                    f"  ({_steps(r)}; {r.duration_s:.1f} s)"))
        if r.statements:
            table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
            table.add_column("#", justify="right")
            table.add_column("step")
            table.add_column("statement", overflow="fold")
            table.add_column("time", justify="right")
            table.add_column("predicted", overflow="fold")
            table.add_column("observed", overflow="fold")
            if report.load:
                table.add_column("stall w/r", justify="right")
            for st in r.statements:
                observed = _observed(st)
                if st.rewritten:
                    observed += "; rewrote " + ", ".join(sorted(st.rewritten))
                if st.error:
                    observed = f"failed: {st.error}"
                row = [str(st.index), st.phase, _short(st.sql), _ms(st.duration_s),
                       _predicted(st.effects, st.prediction_error), observed]
                if report.load:
                    row.append(f"{_ms(st.write_stall_s)} / {_ms(st.read_stall_s)}")
                table.add_row(*row)
            console.print(table)
        for f in r.findings:
            where = f" [#{f.statement}]" if f.statement is not None else ""
            console.print(Text(f"  {_ICON[f.severity]}{where}: {f.message}", style=_STYLE[f.severity]))
    console.print()
    errors = report.errors
    failed = sum(1 for r in report.revisions if not r.ok)
    console.print(
        Text(
            f"{'FAILED' if report.exit_code else 'passed'}: {errors} error(s), "
            f"{failed} of {len(report.revisions)} revision(s) failed, {report.duration_s:.1f} s",
            style="bold red" if report.exit_code else "bold green",
        )
    )
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def to_markdown(report: VerifyReport) -> str:
    lines = [
        "## helios-migrate verify",
        "",
        f"{len(report.revisions)} revision(s) on {report.server}, PostgreSQL {report.version}, "
        f"{report.rows:,} synthetic rows per table"
        + (", under load" if report.load else "") + ".",
        "",
        f"**{'FAILED' if report.exit_code else 'passed'}**: {report.errors} error(s), "
        f"{report.duration_s:.1f} s.",
    ]
    for f in report.findings:
        lines += ["", f"- **{_ICON[f.severity]}**: {_md_cell(f.message)}"]
    for r in report.revisions:
        lines += ["", f"### `{r.revision}` {r.message} — {'ok' if r.ok else 'FAILED'}", "",
                  f"Stairway: {_steps(r)}; {r.duration_s:.1f} s.", ""]
        if r.statements:
            head = "| # | step | statement | time | predicted | observed |"
            sep = "|---:|---|---|---:|---|---|"
            if report.load:
                head += " stall write / read |"
                sep += "---:|"
            lines += [head, sep]
            for st in r.statements:
                observed = f"failed: {st.error}" if st.error else _observed(st) + (
                    "; rewrote " + ", ".join(sorted(st.rewritten)) if st.rewritten else "")
                cells = [str(st.index), st.phase, f"`{_md_cell(_short(st.sql))}`", _ms(st.duration_s),
                         _md_cell(_predicted(st.effects, st.prediction_error)), _md_cell(observed)]
                if report.load:
                    cells.append(f"{_ms(st.write_stall_s)} / {_ms(st.read_stall_s)}")
                lines.append("| " + " | ".join(cells) + " |")
        if r.findings:
            lines.append("")
            for f in r.findings:
                where = f" (statement {f.statement})" if f.statement is not None else ""
                lines.append(f"- **{_ICON[f.severity]}**{where}: {_md_cell(f.message)}")
    return "\n".join(lines) + "\n"


def render(report: VerifyReport, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(report) + "\n"
    if fmt == "markdown":
        return to_markdown(report)
    return to_text(report, color=color)


__all__ = ["Finding", "render", "to_json", "to_markdown", "to_text"]
