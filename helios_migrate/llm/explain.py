"""``helios-migrate explain``: what a migration does, what it locks, how long, what to watch.

The facts come from helios-migrate itself: each statement's changes, the lock knowledge base's
effects on the target server version, and the safety rules' findings.  Without an LLM the summary
is written from those facts directly.  With one, the model rewrites them in plain English; the
prompt holds the facts (as data), and the answer may not contain a number that is not in the
facts: such an answer is sent back, and if it still invents numbers the sentences that carry them
are removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..changes import Change, SetSetting, TransactionControl
from ..config import Config
from ..effects import Effect, WorkClass
from ..findings import Finding
from ..knowledge import SchemaLookup, effect_of
from ..lint import lint_sql
from ..sql_parse import parse_statements
from ..versions import PgVersion
from .ask import ask_validated
from .client import LlmClient, parse_json_object
from .prompts import data_block, system_prompt
from .schema import EXPLAIN_SCHEMA, validate
from .untrusted import one_line

_DURATION = {
    WorkClass.METADATA: "catalog change only: milliseconds whatever the table size, once the lock is granted",
    WorkClass.SCAN: "reads every row: grows with the table size",
    WorkClass.REWRITE: "writes a new copy of the table and rebuilds its indexes: grows with the table size",
    WorkClass.INDEX_BUILD: "reads the table and builds an index: grows with the table size",
    WorkClass.ROW_WRITES: "writes rows: grows with the rows touched (row locks, WAL, dead rows)",
    WorkClass.UNKNOWN: "unknown: helios-migrate does not model this statement",
}
_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class Facts:
    statements: tuple[str, ...]
    """One line per statement: what it does, its locks, its work."""
    findings: tuple[str, ...]
    effects: tuple[Effect, ...]
    version: PgVersion

    def text(self) -> str:
        lines = [f"Target PostgreSQL version: {self.version}", "Statements:"]
        lines += [f"  {line}" for line in self.statements] or ["  (none)"]
        lines.append("Safety findings:")
        lines += [f"  {line}" for line in self.findings] or ["  none"]
        return "\n".join(lines)

    def numbers(self) -> set[str]:
        return set(numbers_in(self.text()))


def numbers_in(text: str) -> list[str]:
    return [m.group(0).replace(",", "").rstrip(".") for m in _NUMBER.finditer(text)]


def _one_line(sql: str, limit: int = 100) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _effect_line(effect: Effect) -> str:
    locks = "; ".join(
        f"{lk.mode.sql_name} on {lk.relation} ({lk.role.value}) blocks "
        f"{lk.mode.blocked_summary() if lk.blocking else 'no one (the relation is new or dead)'}"
        for lk in effect.locks
    ) or "no table lock"
    parts = [f"{effect.change.kind}: locks {locks}", f"work: {effect.work.value} -- {_DURATION[effect.work]}"]
    if effect.rewrites_table:
        parts.append("rewrites the table")
    if effect.transaction.value != "any":
        parts.append(f"transaction: {effect.transaction.value}")
    parts += list(effect.notes)
    if effect.safer_alternative:
        parts.append(f"safer: {effect.safer_alternative}")
    if effect.unsupported:
        parts.append(f"refused by this server version: {effect.unsupported}")
    return "; ".join(parts)


def build_facts(
    sql: str, *, version: PgVersion, config: Config | None = None, catalog: SchemaLookup | None = None,
    source: str = "migration.sql", source_lines: Sequence[int] | None = None,
) -> Facts:
    """The facts about ``sql``; ``source_lines`` maps each line of ``sql`` to the line of the file
    it came from (a revision's), so findings name the same line as ``check``."""
    if source_lines is not None:
        source = "migration.sql"  # the SQL rendered from a revision: its own lines, mapped below
    statements = parse_statements(sql, source)
    lines: list[str] = []
    effects: list[Effect] = []
    number = 0
    for st in statements:
        changes: Sequence[Change] = [
            ch for ch in st.changes if not isinstance(ch, (TransactionControl, SetSetting))
        ]
        if not changes:
            continue
        number += 1
        for ch in changes:
            eff = effect_of(ch, version, catalog)
            effects.append(eff)
            lines.append(f"[{number}] `{_one_line(st.sql)}` -- {_effect_line(eff)}")
    findings = lint_sql(sql, source, config=config or Config(), version=version, catalog=catalog)
    return Facts(tuple(lines), tuple(_finding_line(f, source_lines) for f in findings), tuple(effects), version)


def _finding_line(f: Finding, source_lines: Sequence[int] | None = None) -> str:
    line = f.location.line
    if source_lines and 1 <= line <= len(source_lines):
        line = source_lines[line - 1]
    return f"{f.code} {f.rule} ({f.severity}) line {line}: {f.message}"


def deterministic_summary(facts: Facts) -> str:
    out = ["What it does:"]
    out += [f"  - {line}" for line in facts.statements] or ["  - nothing (no statements)"]
    blocking = [
        (eff, lk) for eff in facts.effects for lk in eff.locks if lk.blocking and (lk.mode.blocks_writes)
    ]
    out.append("What it locks:")
    if blocking:
        out += [
            f"  - {lk.mode.sql_name} on {lk.relation}: blocks {lk.mode.blocked_summary()} ({eff.change.kind})"
            for eff, lk in blocking
        ]
    else:
        out.append("  - nothing that blocks application reads or writes")
    out.append("How long:")
    slow = [eff for eff in facts.effects if eff.work not in (WorkClass.METADATA,)]
    if slow:
        out += [f"  - {eff.change.kind}: {_DURATION[eff.work]}" for eff in slow]
    else:
        out.append(f"  - {_DURATION[WorkClass.METADATA]}")
    out.append("What to watch:")
    out += [f"  - {line}" for line in facts.findings] or ["  - no safety findings"]
    return "\n".join(out)


@dataclass(frozen=True)
class Explanation:
    text: str
    source: str
    """``facts`` (deterministic), ``llm`` or ``llm (stripped)``."""
    problems: tuple[str, ...] = ()


def explain(facts: Facts, client: LlmClient | None) -> Explanation:
    deterministic = deterministic_summary(facts)
    if client is None:
        return Explanation(deterministic, "facts")
    allowed = facts.numbers()

    def check(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
        invented = sorted(set(numbers_in(_answer_text(obj))) - allowed)
        if invented:
            return None, [
                f"the answer contains number(s) not in the facts: {', '.join(invented)}; "
                "use only numbers that appear in the facts"
            ]
        return obj, []

    outcome = ask_validated(
        client,
        system=system_prompt(
            "Explain a database migration to a code reviewer in plain English: what it does, what it "
            "locks and what that blocks, how long it takes, and what to watch. Use only the facts "
            "given; do not estimate durations, sizes or row counts that are not in the facts.",
            EXPLAIN_SCHEMA,
        ),
        user=data_block("facts from helios-migrate", facts.text()),
        schema=EXPLAIN_SCHEMA,
        schema_name="explanation",
        purpose="explain",
        check=check,
    )
    if outcome.value is not None:
        return Explanation(_render(outcome.value), "llm")
    last = outcome.history[-1].answer if outcome.history else None
    obj = parse_json_object(last)[0] if last else None
    if obj is not None and not validate(obj, EXPLAIN_SCHEMA):
        stripped = _strip(obj, allowed)
        if stripped is not None:
            return Explanation(_render(stripped), "llm (stripped)", outcome.reasons)
    return Explanation(deterministic, "facts", outcome.reasons)


def _answer_text(obj: dict[str, Any]) -> str:
    return "\n".join([obj["summary"], obj["locks"], obj["duration"], *obj["watch"]])


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _strip(obj: dict[str, Any], allowed: set[str]) -> dict[str, Any] | None:
    def keep(text: str) -> str:
        return " ".join(s for s in _sentences(text) if set(numbers_in(s)) <= allowed)

    result = {
        "summary": keep(obj["summary"]),
        "locks": keep(obj["locks"]),
        "duration": keep(obj["duration"]),
        "watch": [w for w in (keep(x) for x in obj["watch"]) if w],
    }
    return result if result["summary"] else None


def _render(obj: dict[str, Any]) -> str:
    obj = {
        "summary": one_line(obj["summary"], 4000),
        "locks": one_line(obj["locks"], 4000),
        "duration": one_line(obj["duration"], 4000),
        "watch": [one_line(w, 4000) for w in obj["watch"]],
    }
    out = [
        f"What it does: {obj['summary'].strip()}",
        f"What it locks: {obj['locks'].strip() or '(see the facts)'}",
        f"How long: {obj['duration'].strip() or '(see the facts)'}",
        "What to watch:",
    ]
    out += [f"  - {w.strip()}" for w in obj["watch"]] or ["  - (see the facts)"]
    return "\n".join(out)
