"""Is a dropped column plus an added column really a rename?

Deterministic heuristics decide whether a pair is a candidate at all (same table, same type when
both types are known, similar names by :class:`difflib.SequenceMatcher`); only candidates are put
to the model, and its answer is a hint: the user confirms a rename with a flag or configuration.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..changes import AddColumn, Change, DropColumn, QualifiedName
from ..normalize import normalize_type
from .ask import ask_validated
from .client import LlmClient
from .prompts import data_block, system_prompt
from .schema import RENAME_SCHEMA
from .untrusted import one_line

SIMILARITY_THRESHOLD = 0.6


@dataclass(frozen=True)
class RenameCandidate:
    table: QualifiedName
    old_column: str
    new_column: str
    old_type: str | None
    new_type: str
    similarity: float


@dataclass(frozen=True)
class RenameHint:
    candidate: RenameCandidate
    is_rename: bool | None
    """The model's judgement; ``None`` when no model answered (the heuristics alone stand)."""
    confidence: str
    reason: str
    source: str
    """``heuristic`` or ``llm``."""


def name_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _same_type(a: str | None, b: str) -> bool:
    if a is None:
        return True
    try:
        return normalize_type(a) == normalize_type(b)
    except Exception:
        return a.strip().lower() == b.strip().lower()


def rename_candidates(
    changes: Sequence[Change], old_types: dict[tuple[str, str], str] | None = None
) -> list[RenameCandidate]:
    """Drop + add pairs that may be renames, most similar first.

    ``old_types`` maps ``(table name, column)`` to the dropped column's type (from the models, the
    catalog or Alembic's ``existing_type``); without it the type test is skipped.
    """
    types = old_types or {}
    drops = [ch for ch in changes if isinstance(ch, DropColumn)]
    adds = [ch for ch in changes if isinstance(ch, AddColumn)]
    found = []
    for drop in drops:
        for add in adds:
            if drop.on != add.on:
                continue
            old_type = types.get((drop.on.name, drop.column))
            if not _same_type(old_type, add.column.type):
                continue
            score = name_similarity(drop.column, add.column.name)
            if score >= SIMILARITY_THRESHOLD:
                found.append(
                    RenameCandidate(drop.on, drop.column, add.column.name, old_type, add.column.type, round(score, 2))
                )
    return sorted(found, key=lambda c: -c.similarity)


def judge_rename(candidate: RenameCandidate, client: LlmClient | None, *, context: str = "") -> RenameHint:
    """The model's judgement on one candidate, validated; the heuristic's verdict without a model."""
    heuristic = RenameHint(
        candidate,
        None,
        "high" if candidate.similarity >= 0.85 else "medium" if candidate.similarity >= 0.7 else "low",
        f"same table and type, names {candidate.similarity:.0%} similar",
        "heuristic",
    )
    if client is None:
        return heuristic
    facts = (
        f"table: {candidate.table}\n"
        f"dropped column: {candidate.old_column} ({candidate.old_type or 'type unknown'})\n"
        f"added column: {candidate.new_column} ({candidate.new_type})\n"
        f"name similarity: {candidate.similarity}"
    )
    parts = [data_block("drop and add", facts)]
    if context:
        parts.append(data_block("surrounding models or comments", context))

    def check(obj: dict[str, Any]) -> tuple[RenameHint | None, list[str]]:
        return RenameHint(candidate, bool(obj["is_rename"]), obj["confidence"], one_line(obj["reason"], 300), "llm"), []

    outcome = ask_validated(
        client,
        system=system_prompt(
            "Judge whether a dropped column and an added column in the same migration are really one "
            "column being renamed (so data must be kept) or two unrelated columns.",
            RENAME_SCHEMA,
        ),
        user="\n\n".join(parts),
        schema=RENAME_SCHEMA,
        schema_name="rename_judgement",
        purpose="judge rename",
        check=check,
    )
    if outcome.value is None:
        return RenameHint(candidate, None, heuristic.confidence,
                          f"{heuristic.reason}; no model judgement: {'; '.join(outcome.reasons)}", "heuristic")
    return outcome.value
