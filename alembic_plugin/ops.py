"""The operation autogenerate puts in place of a risky Alembic operation: a lock-safe plan.

:class:`LockSafePlanOp` holds the operation Alembic generated and the plan's steps.  Like every
Alembic operation it renders itself into the revision file (a comment per phase saying what it does
and why, then one :mod:`helios_migrate.runtime` call per step), reverses itself (the inverse steps
in reverse order, so ``downgrade()`` is lock-safe too) and reports the original diff to
``alembic check``.  It is also registered with ``Operations`` (``op.lock_safe_plan``), so it runs
when invoked directly and can be rendered to SQL offline.

Nothing from ``alembic.autogenerate`` is imported at module import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, Operations

from helios_migrate import runtime
from helios_migrate.plan import Phase, Step, TransactionMode
from helios_migrate.planner import duration_text

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

__all__ = ["CommentOp", "LockSafePlanOp", "render_comment_op", "render_plan_op", "run_step", "step_lines"]

PHASE_TEXT = {
    Phase.EXPAND: "EXPAND: additive, compatible with the code running now",
    Phase.BACKFILL: "BACKFILL: existing rows in small batches, no table lock",
    Phase.CONTRACT: "CONTRACT: removes what old code may still use -- deploy code that no longer "
    "uses it first",
}

AS_WRITTEN = "kept as written; its inverse is Alembic's own"


@Operations.register_operation("lock_safe_plan")
class LockSafePlanOp(MigrateOperation):
    """A risky operation rewritten into lock-safe steps."""

    def __init__(
        self,
        original: MigrateOperation | None,
        steps: Sequence[Step],
        *,
        title: str = "",
        notes: Sequence[str] = (),
        downgrade: bool = False,
    ) -> None:
        self.original = original
        self.steps = tuple(steps)
        self.title = title
        self.notes = tuple(notes)
        self.downgrade = downgrade

    @classmethod
    def lock_safe_plan(cls, operations: Operations, steps: Sequence[Step]) -> None:
        """``op.lock_safe_plan(steps)``: run the steps of a plan."""
        operations.invoke(cls(None, steps))

    def reverse(self) -> LockSafePlanOp:
        original: MigrateOperation | None = None
        if self.original is not None:
            try:
                original = self.original.reverse()
            except (NotImplementedError, ValueError):
                original = None
        if self.steps and all(s.irreversible_reason == AS_WRITTEN for s in self.steps):
            # Kept as written: the inverse is Alembic's own operation, run the same careful way.
            from .planning import replan

            again = replan(original) if original is not None else None
            if again is not None:
                return again
        return LockSafePlanOp(
            original,
            [s.reversed() for s in reversed(self.steps)],
            title=f"undo: {self.title}",
            downgrade=not self.downgrade,
        )

    def to_diff_tuple(self) -> Any:
        if self.original is None:
            return ()
        return self.original.to_diff_tuple()


@Operations.implementation_for(LockSafePlanOp)
def _run_plan(operations: Operations, operation: LockSafePlanOp) -> None:
    for step in operation.steps:
        run_step(operations, step)


class CommentOp(MigrateOperation):
    """Comment lines at their place in a revision (the impact header, why a revision was split,
    a drop that may be a rename); runs nothing."""

    def __init__(self, lines: Sequence[str], *, downgrade_lines: Sequence[str] = ()) -> None:
        self.lines = tuple(lines)
        self.downgrade_lines = tuple(downgrade_lines)

    def reverse(self) -> CommentOp:
        return CommentOp(self.downgrade_lines, downgrade_lines=self.lines)

    def to_diff_tuple(self) -> Any:
        return ()


def render_comment_op(autogen_context: AutogenContext, op: CommentOp) -> list[str]:
    return [line if line.startswith("#") else f"# {line}".rstrip() for line in op.lines]


# --- running ------------------------------------------------------------------------------------


def _retry_kwargs(step: Step) -> dict[str, Any]:
    retry = step.retry
    if retry is None:
        return {}
    out: dict[str, Any] = {"lock_timeout": duration_text(retry.lock_timeout_ms)}
    if step.transaction is TransactionMode.OWN or step.backfill is not None:
        out["statement_timeout"] = (
            None if retry.statement_timeout_ms is None else duration_text(retry.statement_timeout_ms)
        )
    out["attempts"] = retry.attempts
    out["backoff"] = retry.backoff_initial_s
    return out


def _done_kwargs(step: Step) -> dict[str, Any]:
    return {"done_when": step.done_when} if step.done_when else {}


def _undo_kwargs(step: Step) -> dict[str, Any]:
    if not step.on_failure:
        return {}
    return {"undo_on_failure": list(step.on_failure), "undo_description": step.on_failure_description}


def _call(step: Step) -> tuple[str, list[Any], dict[str, Any]] | None:
    """The runtime function, positional and keyword arguments (after ``op``) that run ``step``;
    ``None`` when the step has nothing to do."""
    if step.conversion_check is not None:
        check = step.conversion_check
        table = runtime.table_argument(check.table.schema, check.table.name)
        return "check_convertible", [table, check.column, check.to_type], {"key": check.key, **_done_kwargs(step)}
    if step.irreversible_reason and not step.sql and step.backfill is None:
        return "irreversible", [step.description, step.irreversible_reason], {}
    if step.backfill is not None:
        b = step.backfill
        kw: dict[str, Any] = {"key": tuple(b.key)}
        if b.where:
            kw["where"] = b.where
        kw |= {
            "batch_size": b.batch_size, "pause_ms": b.pause_ms, **_retry_kwargs(step), **_undo_kwargs(step),
            **_done_kwargs(step),
        }
        return "backfill", [runtime.table_argument(b.table.schema, b.table.name), b.column, b.expression or None], kw
    if not step.sql:
        return None
    if step.transaction is TransactionMode.AUTOCOMMIT and step.index is not None:
        return (
            "create_index_concurrently",
            [runtime.table_argument(step.index.schema, step.index.name), step.sql[0]],
            _done_kwargs(step),
        )
    kw = _retry_kwargs(step)
    if step.done_when:
        kw["done_when"] = step.done_when
    if step.transaction is TransactionMode.AUTOCOMMIT:
        return "run_autocommit", [list(step.sql)], kw
    if step.transaction is TransactionMode.OWN:
        kw.setdefault("lock_timeout", None)
        return "run_in_own_transaction", [list(step.sql)], kw | _undo_kwargs(step)
    return "execute", [list(step.sql)], {}


def run_step(operations: Any, step: Step) -> None:
    """Run one step through :mod:`helios_migrate.runtime` (``operations`` is Alembic's ``op``)."""
    if step.guard:
        runtime.data_losing_step(operations, step.description, step.guard)
    if step.inverse_loses_data and step.reason and step.description.startswith("undo:"):
        runtime.data_losing_step(operations, step.description, step.reason)
    call = _call(step)
    if call is None:
        return
    name, args, kwargs = call
    if name == "execute":
        for sql in args[0]:
            operations.execute(sql)
        return
    getattr(runtime, name)(operations, *args, **kwargs)


# --- rendering ----------------------------------------------------------------------------------


def _comment(text: str) -> list[str]:
    """``# text`` wrapped at about 96 characters."""
    words = text.split()
    lines: list[str] = []
    line = "#"
    for word in words:
        if len(line) + 1 + len(word) > 96 and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    lines.append(line)
    return lines


def data_loss_guards(step: Step) -> list[tuple[str, str]]:
    """``(step, reason)`` for each guard the step meets when it runs: a drop nobody confirmed, an
    undo that loses data, a step with no inverse."""
    guards: list[tuple[str, str]] = []
    if step.guard:
        guards.append((step.description, step.guard))
    if step.inverse_loses_data and step.description.startswith("undo:"):
        guards.append((step.description, step.reason or "data is lost"))
    call = _call(step)
    if call is not None and call[0] == "irreversible":
        guards.append((step.description, str(step.irreversible_reason)))
    return guards


def step_lines(step: Step) -> list[str]:
    """Python source lines (unindented) that run ``step`` in a revision file."""
    lines: list[str] = []
    if step.reason:
        lines += _comment(f"{step.description}: {step.reason}")
    else:
        lines += _comment(step.description)
    if step.guard:
        lines.append(f"runtime.data_losing_step(op, {step.description!r}, {step.guard!r})")
    if step.inverse_loses_data and step.description.startswith("undo:"):
        lines.append(
            f"runtime.data_losing_step(op, {step.description!r}, {step.reason or 'data is lost'!r})"
        )
    call = _call(step)
    if call is None:
        return []
    name, args, kwargs = call
    if name == "execute":
        return lines + [f"op.execute({sql!r})" for sql in args[0]]
    rendered = ["op", *(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    return [*lines, f"runtime.{name}({', '.join(rendered)})"]


def render_plan_op(autogen_context: AutogenContext, op: LockSafePlanOp) -> list[str]:
    """The revision source for a plan: a header, a comment per phase, a call per step."""
    autogen_context.imports.add("from helios_migrate import runtime")
    lines: list[str] = []
    if op.title:
        lines += _comment(f"helios: {op.title}")
    for note in op.notes:
        lines += _comment(f"note: {note}")
    phase: Phase | None = None
    for step in op.steps:
        body = step_lines(step)
        if not body:
            continue
        if step.phase is not phase:
            phase = step.phase
            lines.append(
                f"# -- undo {phase.value}" if op.downgrade else f"# -- {PHASE_TEXT[phase]}"
            )
        lines += body
    if not any(not line.startswith("#") for line in lines):
        lines.append("pass")
    return lines
