"""The impact estimate at the top of a generated ``upgrade()``, as a comment block."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from helios_migrate import calibration
from helios_migrate.changes import Change, QualifiedName
from helios_migrate.config import AutogenerateSettings
from helios_migrate.facts import collect_facts
from helios_migrate.impact import estimate_plan, render_revision_header, tables_of_plan
from helios_migrate.plan import Plan
from helios_migrate.planner import UnrenderableChange, plan_changes
from helios_migrate.versions import PgVersion, default_version

from .containers import leaves
from .new_tables import LockTimeoutOp
from .ops import CommentOp, LockSafePlanOp
from .reading import read_changes

if TYPE_CHECKING:
    from alembic.operations.ops import OpContainer

    from .run_state import Planning

log = logging.getLogger("alembic.helios")


HEADER_MARK = "helios impact estimate"


HEADER_STEP_WIDTH = 44
"""Step names longer than this are cut in the impact table and listed in full below it."""


def _version_of(context: Any, planning: Planning | None) -> PgVersion:
    if planning is not None:
        return planning.version
    info = getattr(getattr(context, "dialect", None), "server_version_info", None)
    if info:
        return PgVersion(int(info[0]), int(info[1]) if len(info) > 1 else 0)

    return default_version()


def _steps_of(container: OpContainer, version: PgVersion, planning: Planning | None) -> list[Any]:
    """Every step the revision runs, in order: a plan's steps, or an operation kept as written."""
    steps: list[Any] = []
    for op in leaves(container):
        if isinstance(op, LockSafePlanOp):
            steps.extend(op.steps)
            continue
        if isinstance(op, CommentOp | LockTimeoutOp):
            continue  # no work: comments, and the lock_timeout set for plain operations
        changes = read_changes(op, "not in the impact estimate")
        if not changes:
            continue
        policy = planning.policy if planning is not None else None
        new_tables = (planning.new_tables if planning is not None else set()) | _tables(changes)
        try:
            steps.extend(plan_changes(changes, version, policy=policy, new_tables=new_tables).steps)
        except UnrenderableChange as exc:  # a data migration kept as written: its SQL is Alembic's
            log.warning("helios: %s: not in the impact estimate (%s)", type(op).__name__, exc)
    return steps


def _tables(changes: Sequence[Change]) -> set[QualifiedName]:
    """Tables of operations kept as written: estimated as written, in the migration transaction."""
    return {ch.table for ch in changes if ch.table is not None}


def impact_header(connection: Any, container: OpContainer, version: PgVersion,
                  settings: AutogenerateSettings, planning: Planning | None = None) -> CommentOp | None:
    """The impact estimate of the revision's steps as a comment block (``planning``: the run that
    made the plans, whose policy and live lookups the estimate uses).

    With a connection, facts are read for the tables involved (read-only catalog queries, a write
    sample of ``impact_write_sample_s`` seconds, default 0: none); throughput from the calibration
    cache (``impact_calibration = "cached"``, the default), measured (``"measure"``) or the
    documented default (``"default"``).  Without one: locks and work classes only.
    """

    steps = _steps_of(container, version, planning)
    if not steps:
        return None
    plan = Plan(steps=tuple(steps))
    facts = None
    throughput = None
    if connection is not None:
        sample = settings.impact_write_sample_s
        mode = settings.impact_calibration
        try:
            facts = collect_facts(connection, tables_of_plan(plan), write_sample_s=sample or None)
            if mode == "measure":
                throughput = calibration.calibrate(connection, server=facts.server)
            elif mode == "cached":
                throughput = calibration.cached_throughput(calibration.server_identity(facts.server))
        except Exception as exc:  # facts are a bonus: the header falls back to locks only
            log.warning("helios: impact facts not read (%s: %s); header shows locks only",
                        type(exc).__name__, exc)
            facts = None
    # The same live lookups the plan was made with: a catalog-only change is not shown as a rewrite.
    catalog = planning.catalog if planning is not None else None
    impact = estimate_plan(plan, facts, version, throughput=throughput, catalog=catalog)
    text = render_revision_header(impact, prefix="", width=HEADER_STEP_WIDTH)
    lines = [f"# -- {HEADER_MARK} (helios-migrate; see docs/impact.md) --"]
    lines += ["# " + line if line else "#" for line in text.rstrip("\n").split("\n")]
    cut = [s for s in impact.steps if len(s.description) > HEADER_STEP_WIDTH]
    if cut:
        lines.append("# steps in full:")
        for s in cut:
            lines += _wrapped(f"{s.number}  {s.description}", indent=" " * (len(str(s.number)) + 2))
    lines.append("# --")
    return CommentOp(lines)


def _wrapped(text: str, *, indent: str) -> list[str]:
    """``# text`` wrapped at 96 columns, continuation lines indented by ``indent``."""
    out: list[str] = []
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > 96 and line != "#":
            out.append(line)
            line = "# " + indent[:-1]
        line += " " + word
    out.append(line)
    return out


def with_header(
    context: Any, container: OpContainer, settings: AutogenerateSettings, planning: Planning | None
) -> None:
    if container.is_empty() or not settings.impact_header:
        return
    if any(isinstance(op, CommentOp) and op.lines and HEADER_MARK in op.lines[0] for op in container.ops):
        return
    header = impact_header(getattr(context, "connection", None), container, _version_of(context, planning),
                           settings, planning)
    if header is not None:
        container.ops.insert(0, header)
