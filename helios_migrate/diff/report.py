"""A diff as text, JSON or Markdown."""

from __future__ import annotations

import json
from typing import Any

from .compare import Difference, DiffResult, Status

FORMATS = ("text", "json", "markdown")

_MARK = {Status.MISSING: "-", Status.EXTRA: "+", Status.DIFFERENT: "~"}
_WORDS = {
    Status.MISSING: "missing in TARGET",
    Status.EXTRA: "extra in TARGET",
    Status.DIFFERENT: "different",
}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "(" + ", ".join(repr(v) for v in value) + ")"
    return str(value)


def _summary(d: Difference) -> str:
    obj = d.source or d.target
    assert obj is not None
    if d.status is Status.DIFFERENT:
        return ""
    definition = obj.attribute("definition") or obj.attribute("type")
    if d.kind == "function":
        definition = f"{obj.attribute('kind')} returning {obj.attribute('returns')}, {obj.attribute('language')}"
    elif d.kind == "comment":
        definition = repr(obj.attribute("text"))
    elif d.kind == "grant":
        definition = ", ".join(obj.attribute("privileges") or ())
    elif d.kind == "owner":
        definition = obj.attribute("owner")
    elif d.kind == "extension":
        definition = f"version {obj.attribute('version')}"
    elif d.kind == "rls":
        definition = "forced" if obj.attribute("forced") else "enabled"
    elif d.kind == "policy":
        definition = f"{obj.attribute('command')} to {', '.join(obj.attribute('roles') or ())}"
    return f": {definition}" if definition and d.kind != "table" else ""


def _not_compared(result: DiffResult) -> list[str]:
    return [f"not compared: {kind} ({why})" for kind, why in result.not_compared]


def _count(result: DiffResult) -> str:
    counts = {s: sum(1 for d in result.differences if d.status is s) for s in Status}
    ignored = f", {result.ignored} ignored" if result.ignored else ""
    return (f"{len(result.differences)} difference(s): {counts[Status.MISSING]} missing, "
            f"{counts[Status.EXTRA]} extra, {counts[Status.DIFFERENT]} different{ignored}")


def render_text(result: DiffResult) -> str:
    lines = [f"SOURCE: {result.source}", f"TARGET: {result.target}", ""]
    if not result.differences:
        ignored = f" ({result.ignored} ignored)" if result.ignored else ""
        lines.append(f"no differences{ignored}")
        return "\n".join([*lines, *_not_compared(result)]) + "\n"
    for d in result.differences:
        lines.append(f"{_MARK[d.status]} {d.kind} {d.name} ({_WORDS[d.status]}){_summary(d)}")
        for change in d.changes:
            lines.append(f"    {change.attribute}: {_value(change.source)} -> {_value(change.target)}")
    lines += ["", _count(result), *_not_compared(result)]
    return "\n".join(lines) + "\n"


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def as_dict(result: DiffResult) -> dict[str, Any]:
    def attributes(obj: Any) -> Any:
        return None if obj is None else {k: _json_value(v) for k, v in obj.attributes}

    return {
        "source": result.source,
        "target": result.target,
        "differ": result.differ,
        "ignored": result.ignored,
        "not_compared": [{"kind": kind, "reason": why} for kind, why in result.not_compared],
        "differences": [
            {
                "status": d.status.value,
                "kind": d.kind,
                "name": d.name,
                "source": attributes(d.source),
                "target": attributes(d.target),
                "changes": [
                    {"attribute": c.attribute, "source": _json_value(c.source), "target": _json_value(c.target)}
                    for c in d.changes
                ],
            }
            for d in result.differences
        ],
    }


def render_json(result: DiffResult) -> str:
    return json.dumps(as_dict(result), indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: DiffResult) -> str:
    lines = [
        "## Schema diff",
        "",
        f"SOURCE: {_cell(result.source)}  ",
        f"TARGET: {_cell(result.target)}",
        "",
    ]
    if not result.differences:
        ignored = f" ({result.ignored} ignored)" if result.ignored else ""
        return "\n".join([*lines, f"No differences{ignored}.", *_md_not_compared(result)]) + "\n"
    lines += ["| | object | name | difference |", "| --- | --- | --- | --- |"]
    for d in result.differences:
        if d.status is Status.DIFFERENT:
            detail = "; ".join(
                f"{c.attribute}: `{_cell(_value(c.source))}` → `{_cell(_value(c.target))}`" for c in d.changes
            )
        else:
            summary = _summary(d)[2:]
            detail = _WORDS[d.status] + (f": `{_cell(summary)}`" if summary else "")
        lines.append(f"| {_MARK[d.status]} | {d.kind} | `{_cell(d.name)}` | {detail} |")
    lines += ["", _count(result), *_md_not_compared(result)]
    return "\n".join(lines) + "\n"


def _md_not_compared(result: DiffResult) -> list[str]:
    return ["", *(f"- {line}" for line in _not_compared(result))] if result.not_compared else []


def render(result: DiffResult, fmt: str) -> str:
    return {"text": render_text, "json": render_json, "markdown": render_markdown}[fmt](result)
