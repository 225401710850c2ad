"""``review --explain``: a plain-English paragraph per finding, written by the configured LLM.

The model's answer is data.  It is shown as text next to the finding and nothing else: the
finding's code, severity, message, help and fix are helios-migrate's and never read from the
answer.  The answer must be one JSON object of a closed schema (``{"explanations": [{"finding":
"F1", "text": "..."}]}``) naming only the findings it was sent; each paragraph becomes one line of
printable characters without markup (:func:`plain_paragraph`), at most :data:`MAX_CHARS` long.  An
answer that fails (not JSON, keys outside the schema, unknown findings, empty) is sent back with
the reasons, then given up; a transport failure (connection, timeout, HTTP error) is given up at
once.  Either way the report is printed without the explanations it lacks, with a note saying
why, and the exit code is the report's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..llm.ask import ask_validated
from ..llm.client import LlmClient
from ..llm.prompts import data_block, system_prompt
from ..llm.schema import closed_object
from ..llm.untrusted import one_line
from .engine import FIX_HEADING, ReviewFinding

MAX_CHARS = 600
"""Longest paragraph shown per finding."""
BATCH = 20
"""Findings sent in one request."""

EXPLAIN_REVIEW_SCHEMA = closed_object({
    "explanations": {
        "type": "array",
        "items": closed_object({
            "finding": {"type": "string", "minLength": 1},
            "text": {"type": "string", "minLength": 1},
        }),
    },
})

_MARKUP = re.compile(r"[`<>|*#\[\]\\]")


def plain_paragraph(text: str, limit: int = MAX_CHARS) -> str:
    """Model text as one printable line with no characters that are markup in Markdown, HTML or a
    table (backticks, angle brackets, pipes, asterisks, hashes, brackets, backslashes), cut at a
    word boundary to at most ``limit`` characters."""
    flat = one_line(_MARKUP.sub(" ", one_line(text, 20 * limit)), 20 * limit)
    flat = " ".join(flat.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 3].rsplit(" ", 1)[0]
    return cut + "..."


@dataclass(frozen=True)
class Explanations:
    paragraphs: dict[int, str]
    """Index in the report's findings -> the paragraph shown under it."""
    notes: tuple[str, ...] = ()
    """Why some or all findings have no paragraph."""
    model: str = ""


def _facts(index: int, rf: ReviewFinding) -> str:
    f = rf.finding
    words = f.help.partition(FIX_HEADING)[0].strip()
    lines = [f"id: F{index + 1}", f"code: {f.code} ({f.rule}), severity: {f.severity}",
             f"subject: {f.location.path}", f"finding: {f.message}"]
    if words:
        lines.append(f"advice: {' '.join(words.split())}")
    if rf.fix is not None and rf.fix.steps:
        lines.append("fix (lock-safe plan): " + " ; ".join(sql for step in rf.fix.steps for sql in step.sql))
    return "\n".join(lines)


_TASK = (
    "For each finding of a schema review, write one short paragraph of plain English (at most 80 words, "
    "no Markdown, no code) for a developer: what the finding means for the application on a live "
    "database, and what the advice given does about it. Do not change, question or rank the findings; "
    "do not invent numbers, names or fixes that are not in the finding. Answer with one entry per "
    "finding id you were given."
)


def explain_findings(findings: Sequence[ReviewFinding], client: LlmClient) -> Explanations:
    """A paragraph per finding, in batches of :data:`BATCH`; see the module docstring."""
    paragraphs: dict[int, str] = {}
    notes: list[str] = []
    for start in range(0, len(findings), BATCH):
        batch = list(enumerate(findings))[start:start + BATCH]
        got, note, endpoint_failed = _explain_batch(batch, client)
        paragraphs.update(got)
        if note:
            notes.append(note)
        if endpoint_failed:  # do not send the other batches to an endpoint that failed
            break
    missing = len(findings) - len(paragraphs)
    if missing and not notes:
        notes.append(f"the LLM gave no explanation for {missing} finding(s)")
    return Explanations(paragraphs, tuple(notes), client.model)


def _explain_batch(
    batch: list[tuple[int, ReviewFinding]], client: LlmClient
) -> tuple[dict[int, str], str | None, bool]:
    """(paragraphs by finding index, a note when some are missing, did the endpoint fail?)"""
    ids = {f"F{i + 1}": i for i, _ in batch}

    def check(obj: dict[str, Any]) -> tuple[dict[int, str] | None, list[str]]:
        reasons: list[str] = []
        out: dict[int, str] = {}
        for entry in obj["explanations"]:
            key = str(entry["finding"]).strip()
            if key not in ids:
                reasons.append(f"finding {one_line(key, 40)!r} was not sent; use only the ids given ({', '.join(ids)})")
                continue
            text = plain_paragraph(entry["text"])
            if text:
                out[ids[key]] = text
        if not out and not reasons:
            reasons.append("the answer explains none of the findings")
        return (None, reasons) if reasons else (out, [])

    outcome = ask_validated(
        client,
        system=system_prompt(_TASK, EXPLAIN_REVIEW_SCHEMA),
        user=data_block("schema review findings from helios-migrate",
                        "\n\n".join(_facts(i, rf) for i, rf in batch)),
        schema=EXPLAIN_REVIEW_SCHEMA,
        schema_name="review_explanations",
        purpose="review explain",
        check=check,
    )
    if outcome.value is not None:
        return outcome.value, None, False
    if outcome.error is not None:
        return {}, f"no answer from the LLM ({one_line(str(outcome.error), 300)})", True
    reasons = "; ".join(one_line(r, 200) for r in outcome.reasons[:3])
    return {}, f"the LLM's answer was rejected after {outcome.attempts} attempt(s) ({reasons})", False
