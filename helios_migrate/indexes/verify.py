"""Candidate indexes judged by the planner, with HypoPG's hypothetical indexes.

Only where the ``hypopg`` extension is already installed in the database: helios-migrate never
creates an extension, nor an index, on the database it advises.  A hypothetical index exists only
in this session's memory (``hypopg_create_index``), so the read-only connection is enough.  Each
query a candidate serves is planned (``EXPLAIN``, never run) without it and with it; a query with
parameters (``$1``, as ``pg_stat_statements`` normalises them) is prepared, and its generic plan
explained with NULL arguments (``plan_cache_mode = force_generic_plan``: the plan does not depend on
the values).  The candidates on other tables are hypothetical indexes on both sides, so a join is
judged as it would run with the whole advice applied.  A candidate is kept when the planner uses
it for a query and its total estimated cost (each query's cost times its calls) drops by at least
:data:`MIN_SAVING`.  A partial index's predicate and an expression key are planned as written; an
``INCLUDE`` list is judged only if the planner picks an index-only scan on the hypothetical index
(which it does only where VACUUM has marked most of the table's pages all-visible): otherwise the
verdict says so rather than count it as verified.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from ..sqltext import quote_ident, quote_qualified
from .candidates import Suggestion
from .workload import Query

MIN_SAVING = 0.3
"""The share of the planner's cost a candidate must save to be kept."""

_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Verdict:
    cost_before: float
    """Planner cost of the queries it serves, each times its calls, without the index."""
    cost_after: float
    used_by: int
    """How many of the queries the planner would run with the index."""
    explained: int
    """How many of the queries could be planned (the others are left out of the costs)."""
    index_only: int = 0
    """How many of the queries the planner would run as an index-only scan on it (an INCLUDE list
    is not judged by the planner when this is 0)."""

    @property
    def saving(self) -> float:
        return 1 - self.cost_after / self.cost_before if self.cost_before > 0 else 0.0

    @property
    def kept(self) -> bool:
        return self.used_by > 0 and self.saving >= MIN_SAVING


def hypopg_installed(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone()
    return row is not None


def _plan(conn: psycopg.Connection[Any], query: Query) -> dict[str, Any] | None:
    """The top plan node of ``query`` (not run), or ``None`` when it cannot be planned."""
    params = {int(n) for n in _PARAM.findall(query.text)}
    try:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '10s'")
            if params:
                conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                conn.execute(f"PREPARE helios_advice AS {query.text}")
                try:
                    nulls = ", ".join(["NULL"] * max(params))
                    row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE helios_advice({nulls})").fetchone()
                finally:
                    conn.execute("DEALLOCATE helios_advice")
            else:
                row = conn.execute(f"EXPLAIN (FORMAT JSON) {query.text}").fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _uses(plan: dict[str, Any], index: str, *, only: bool = False) -> bool:
    if plan.get("Index Name") == index and (not only or plan.get("Node Type") == "Index Only Scan"):
        return True
    return any(_uses(child, index, only=only) for child in plan.get("Plans", ()))


def _hypothetical(conn: psycopg.Connection[Any], suggestion: Suggestion) -> str:
    """Create ``suggestion`` as a hypothetical index in this session; its name."""
    table = quote_qualified(suggestion.table.name.schema, suggestion.table.name.name)
    statement = f"CREATE INDEX ON {table} ({', '.join(suggestion.elements)})"
    if suggestion.include:
        statement += " INCLUDE (" + ", ".join(quote_ident(c) for c in suggestion.include) + ")"
    if suggestion.where is not None:
        statement += f" WHERE {suggestion.where}"
    row = conn.execute("SELECT indexname FROM hypopg_create_index(%s)", (statement,)).fetchone()
    return str(row[0]) if row else ""


def verify(conn: psycopg.Connection[Any], suggestions: Sequence[Suggestion]) -> dict[str, Verdict]:
    """The planner's verdict on each suggestion, by suggestion name."""
    def reset() -> None:
        conn.execute("SELECT hypopg_reset()")

    reset()
    return judge(conn, suggestions, place=lambda s: _hypothetical(conn, s), clear=reset)


def judge(
    conn: psycopg.Connection[Any],
    suggestions: Sequence[Suggestion],
    *,
    place: Callable[[Suggestion], str],
    clear: Callable[[], None],
) -> dict[str, Verdict]:
    """Each suggestion's verdict: its queries planned without it and with it (``place`` puts an
    index in place and returns its name; ``clear`` removes every index ``place`` made)."""
    verdicts: dict[str, Verdict] = {}
    for suggestion in suggestions:
        try:
            # The other tables' candidates are in place on both sides: a join's cost is then not
            # dominated by another table's scan that its own candidate removes.
            for other in suggestions:
                if other.table.name != suggestion.table.name:
                    place(other)
            before = {q: _plan(conn, q) for q in suggestion.queries}
            name = place(suggestion)
            after = {q: _plan(conn, q) for q in suggestion.queries}
        finally:
            clear()
        cost_before = cost_after = 0.0
        used = explained = index_only = 0
        for q in suggestion.queries:
            b, a = before[q], after[q]
            if b is None or a is None:
                continue
            explained += 1
            weight = max(q.calls, 1)
            cost_before += float(b["Total Cost"]) * weight
            cost_after += float(a["Total Cost"]) * weight
            used += _uses(a, name)
            index_only += _uses(a, name, only=True)
        verdicts[suggestion.name] = Verdict(cost_before, cost_after, used, explained, index_only)
    return verdicts
