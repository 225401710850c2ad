"""Plans for what the rules cannot plan, proposed by someone else: a :class:`Proposer` is injected
(the Alembic plugin binds :func:`llm_proposer` to its run); its answer is a plan that already
passed validation, or the reasons it did not.  Without a proposer, planning stays deterministic."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from .. import changes as c
from ..changes import Change
from ..config import Config
from ..knowledge import SchemaLookup
from ..plan import Plan
from ..versions import PgVersion
from .context import PLANNERS, plan_changes
from .facts import PlannerFacts
from .sqlgen import UnrenderableChange


class Proposal(Protocol):
    """The outcome of one proposal (:class:`helios_migrate.llm.ProposalResult`)."""

    @property
    def accepted(self) -> Plan | None:
        """The validated plan, or ``None`` when the proposal was rejected."""
        ...

    @property
    def message(self) -> str:
        """What happened, for a note in the revision: accepted, or why not."""
        ...


class Proposer(Protocol):
    """``sql -> Proposal``: a plan for the statements ``sql``, judged before it is returned."""

    def __call__(self, sql: str) -> Proposal: ...


def unplannable(change: Change) -> bool:
    """A change no planner handles that the rules cannot judge safe as written: raw SQL the
    knowledge base does not model, and data migrations."""
    return type(change) not in PLANNERS and isinstance(change, (c.RawStatement, c.ModifyRows))


def plan_with_proposer(
    changes: Sequence[Change],
    sql: str,
    version: PgVersion,
    proposer: Proposer | None,
    **kwargs: Any,
) -> Plan:
    """:func:`plan_changes`, and when a change is :func:`unplannable` and a ``proposer`` is given,
    the proposed plan for ``sql`` instead -- only when it passed validation (its steps are marked
    ``LLM-proposed:``).  A rejected proposal leaves the deterministic plan, with the reasons in a
    note (:class:`UnrenderableChange` when there is none: a data migration kept as written)."""
    try:
        plan: Plan | None = plan_changes(changes, version, **kwargs)
        unrenderable: UnrenderableChange | None = None
    except UnrenderableChange as exc:
        plan, unrenderable = None, exc
    if proposer is None or not sql.strip() or not any(unplannable(ch) for ch in changes):
        if plan is None:
            assert unrenderable is not None
            raise unrenderable
        return plan
    result = proposer(sql)
    accepted = result.accepted
    if accepted is not None:
        notes = () if plan is None else plan.notes
        return Plan(steps=accepted.steps, source=tuple(changes), notes=(*accepted.notes, *notes))
    if plan is None:
        assert unrenderable is not None
        raise UnrenderableChange(f"{unrenderable} ({result.message})")
    return dataclasses.replace(plan, notes=(*plan.notes, result.message))


def llm_proposer(version: PgVersion, *, catalog: SchemaLookup | None = None, config: Any = None,
                 where: str = "autogenerate", facts: PlannerFacts | None = None) -> Proposer | None:
    """A :class:`Proposer` when an LLM is configured (``[tool.helios-migrate.llm]`` or the
    environment), else ``None``: without one, planning stays deterministic.

    The LLM layer sits above the planner (with the commands) and loads only when a proposer is
    asked for, so its import stays inside this function."""
    try:
        from ..llm import (  # lazy: the LLM layer sits above the planner
            LlmClient,
            PlanContext,
            load_llm_config,
            propose_plan,
        )

        llm = load_llm_config()
        if not llm.enabled:
            return None
        client = LlmClient(llm)
    except Exception:
        return None
    context = PlanContext(
        client=client,
        version=version,
        config=config or Config(),
        catalog=catalog,
        where=where,
        primary_key=facts.primary_key if facts is not None else None,
    )
    return lambda sql: propose_plan(sql, context)
