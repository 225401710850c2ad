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

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, Operations

from helios_migrate import runtime
from helios_migrate.codes import RuleCode
from helios_migrate.plan import (
    Acknowledgement,
    Direction,
    Origin,
    Phase,
    RetryPolicy,
    Step,
    TransactionMode,
)
from helios_migrate.planner import duration_text
from helios_migrate.planner.triggers import drop_sync_trigger_statements, sync_trigger_statements

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

__all__ = [
    "CommentOp",
    "LockSafePlanOp",
    "PolicyOp",
    "RuntimeCall",
    "render_comment_op",
    "render_plan_op",
    "render_policy_op",
    "run_step",
    "step_lines",
]

WIDTH = 100
"""Revision files are formatted to this many columns (calls one argument per line beyond it)."""
BODY_INDENT = 4
"""Where the renderer's lines start: inside ``upgrade()`` / ``downgrade()``."""

PHASE_TEXT = {
    Phase.EXPAND: "EXPAND: additive, compatible with the code running now",
    Phase.BACKFILL: "BACKFILL: existing rows in small batches, no table lock",
    Phase.CONTRACT: "CONTRACT: removes what old code may still use -- deploy code that no longer "
    "uses it first",
}

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
        contract_after_deploy: bool = False,
        replan: Callable[[MigrateOperation], LockSafePlanOp | None] | None = None,
    ) -> None:
        self.original = original
        self.steps = tuple(steps)
        self.title = title
        self.notes = tuple(notes)
        self.downgrade = downgrade
        self.contract_after_deploy = contract_after_deploy
        """Its contract phase removes what the code running before the revision still uses (a
        rename's old column or view): that phase always goes into a revision of its own, to run
        after the new code is deployed, whatever ``split_contract`` says."""
        self.policy: RetryPolicy | None = None
        """The revision's policy (``policy = runtime.Policy(...)`` at the top of the function);
        set when the revision declares one, else every call spells out its own timeouts."""
        self.replan = replan
        """Plans an operation with the settings of the autogenerate run that made this plan
        (:meth:`alembic_plugin.run_state.Planning.replan`): ``reverse()`` of a plan kept as
        written plans Alembic's inverse the same careful way."""

    @classmethod
    def lock_safe_plan(cls, operations: Operations, steps: Sequence[Step]) -> None:
        """``op.lock_safe_plan(steps)``: run the steps of a plan."""
        operations.invoke(cls(None, steps))

    def reverse(self) -> MigrateOperation:
        original: MigrateOperation | None = None
        if self.original is not None:
            try:
                original = self.original.reverse()
            except (NotImplementedError, ValueError):
                original = None
        if self.replan is not None and original is not None and self.steps and all(
            s.origin is Origin.AS_WRITTEN for s in self.steps
        ):
            # Kept as written: the inverse is Alembic's own operation, run the same careful way.
            again = self.replan(original)
            # None: the inverse needs no plan (it runs as written, in the migration transaction)
            return again if again is not None else original
        return LockSafePlanOp(
            original,
            [s.reversed() for s in reversed(self.steps)],
            title=f"undo: {self.title}",
            downgrade=not self.downgrade,
            replan=self.replan,
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


class PolicyOp(MigrateOperation):
    """``policy = runtime.Policy(...)`` at the top of ``upgrade()`` or ``downgrade()``: how every
    step of the function below waits for its locks; runs nothing itself."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def reverse(self) -> PolicyOp:
        return PolicyOp(self.policy)

    def to_diff_tuple(self) -> Any:
        return ()


@Operations.implementation_for(PolicyOp)
def _run_policy(operations: Operations, operation: PolicyOp) -> None:
    """Nothing to run: each step carries its own policy when invoked directly."""


def runtime_policy(retry: RetryPolicy) -> runtime.Policy:
    """The :class:`~helios_migrate.runtime.Policy` that runs steps with ``retry``."""
    return runtime.Policy(
        lock_timeout=duration_text(retry.lock_timeout_ms),
        statement_timeout=None if retry.statement_timeout_ms is None else duration_text(retry.statement_timeout_ms),
        attempts=retry.attempts,
        backoff=retry.backoff_initial_s,
        max_backoff=retry.backoff_max_s,
    )


def render_policy_op(autogen_context: AutogenContext, op: PolicyOp) -> list[str]:
    autogen_context.imports.add("from helios_migrate import runtime")
    policy = runtime_policy(op.policy)
    defaults = runtime.Policy()
    kwargs = {
        name: getattr(policy, name)
        for name in ("lock_timeout", "statement_timeout", "attempts", "backoff", "max_backoff")
        if name in ("lock_timeout", "statement_timeout", "attempts", "backoff")
        or getattr(policy, name) != getattr(defaults, name)
    }
    return [
        "# How every step below waits for its locks (lock_timeout, then retries with backoff).",
        *_call_lines("policy = runtime.Policy", [], kwargs),
    ]


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


class RuntimeCall(str, enum.Enum):
    """How a step runs: the :mod:`helios_migrate.runtime` function its revision line calls (the
    value is the function's name), or ``EXECUTE``, plain ``op.execute`` statements."""

    EXECUTE = "execute"
    IRREVERSIBLE = "irreversible"
    BACKFILL = "backfill"
    CHECK_CONVERTIBLE = "check_convertible"
    CREATE_INDEX_CONCURRENTLY = "create_index_concurrently"
    RUN_AUTOCOMMIT = "run_autocommit"
    RUN_IN_OWN_TRANSACTION = "run_in_own_transaction"
    SYNC_COLUMN_TRIGGER = "sync_column_trigger"
    DROP_SYNC_TRIGGER = "drop_sync_trigger"

    def __str__(self) -> str:
        return self.value

    @property
    def takes_policy(self) -> bool:
        """Does the revision line pass ``policy=policy`` (the revision's timeouts and retries) to
        the runtime function, which accepts it?"""
        return self in _TAKES_POLICY


_TAKES_POLICY = frozenset({
    RuntimeCall.RUN_IN_OWN_TRANSACTION, RuntimeCall.RUN_AUTOCOMMIT, RuntimeCall.BACKFILL,
    RuntimeCall.SYNC_COLUMN_TRIGGER, RuntimeCall.DROP_SYNC_TRIGGER,
})

Call = tuple[RuntimeCall, list[Any], dict[str, Any]]
"""A step's runtime call: which, and its positional and keyword arguments after ``op``."""


def _call(step: Step) -> Call | None:
    """The runtime function, positional and keyword arguments (after ``op``) that run ``step``;
    ``None`` when the step has nothing to do."""
    if step.conversion_check is not None:
        check = step.conversion_check
        table = runtime.table_argument(check.table.schema, check.table.name)
        return RuntimeCall.CHECK_CONVERTIBLE, [table, check.column, check.to_type], {"key": check.key, **_done_kwargs(step)}
    if step.irreversible_reason and not step.sql and step.backfill is None:
        return RuntimeCall.IRREVERSIBLE, [step.description, step.irreversible_reason], {}
    if step.backfill is not None:
        b = step.backfill
        kw: dict[str, Any] = {"key": tuple(b.key)}
        if b.where:
            kw["where"] = b.where
        kw |= {
            "batch_size": b.batch_size, "pause_ms": b.pause_ms, **_retry_kwargs(step), **_undo_kwargs(step),
            **_done_kwargs(step),
        }
        return RuntimeCall.BACKFILL, [runtime.table_argument(b.table.schema, b.table.name), b.column, b.expression or None], kw
    if not step.sql:
        return None
    sync = _sync_trigger_call(step)
    if sync is not None:
        return sync
    if step.transaction is TransactionMode.AUTOCOMMIT and step.index is not None:
        return (
            RuntimeCall.CREATE_INDEX_CONCURRENTLY,
            [runtime.table_argument(step.index.schema, step.index.name), step.sql[0]],
            _done_kwargs(step),
        )
    kw = _retry_kwargs(step)
    if step.done_when:
        kw["done_when"] = step.done_when
    if step.transaction is TransactionMode.AUTOCOMMIT:
        return RuntimeCall.RUN_AUTOCOMMIT, [list(step.sql)], kw
    if step.transaction is TransactionMode.OWN:
        kw.setdefault("lock_timeout", None)
        return RuntimeCall.RUN_IN_OWN_TRANSACTION, [list(step.sql)], kw | _undo_kwargs(step)
    return RuntimeCall.EXECUTE, [list(step.sql)], {}


def _sync_trigger_call(step: Step) -> Call | None:
    """A step that creates (after statements of its own) or drops one of the plan's sync
    triggers, as ``runtime.sync_column_trigger`` / ``drop_sync_trigger``: no plpgsql in the revision."""
    if step.transaction is not TransactionMode.OWN or step.on_failure:
        return None
    kw = _retry_kwargs(step) | _done_kwargs(step)
    kw.setdefault("lock_timeout", None)
    trigger = step.sync_trigger
    if trigger is not None:
        table = runtime.table_argument(trigger.table.schema, trigger.table.name)
        statements = sync_trigger_statements(trigger)
        before = step.sql[: len(step.sql) - len(statements)]
        if step.sql[len(before):] == statements:
            args = [table, trigger.source, trigger.target]
            if trigger.expression is not None:
                args.append(trigger.expression)
            named: dict[str, Any] = {"name": trigger.name, **({"before": list(before)} if before else {})}
            return RuntimeCall.SYNC_COLUMN_TRIGGER, args, named | kw
    trigger = step.inverse_sync_trigger
    if trigger is not None and step.sql == drop_sync_trigger_statements(trigger):
        table = runtime.table_argument(trigger.table.schema, trigger.table.name)
        return RuntimeCall.DROP_SYNC_TRIGGER, [table, trigger.name], kw
    return None


def run_step(operations: Any, step: Step) -> None:
    """Run one step through :mod:`helios_migrate.runtime` (``operations`` is Alembic's ``op``)."""
    for description, reason in _data_losing(step):
        runtime.data_losing_step(operations, description, reason)
    call = _call(step)
    if call is None:
        return
    name, args, kwargs = call
    if name is RuntimeCall.EXECUTE:
        for sql in args[0]:
            operations.execute(sql)
        return
    getattr(runtime, name.value)(operations, *args, **kwargs)


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


def _data_losing(step: Step) -> list[tuple[str, str]]:
    """``(step, reason)`` for each ``runtime.data_losing_step`` guard before the step: a drop
    nobody confirmed, an undo that loses data."""
    guards: list[tuple[str, str]] = []
    if step.guard:
        guards.append((step.description, step.guard))
    if step.inverse_loses_data and step.direction is Direction.DOWNGRADE:
        guards.append((step.description, step.reason or "data is lost"))
    return guards


def data_loss_guards(step: Step) -> list[tuple[str, str]]:
    """``(step, reason)`` for each guard the step meets when it runs: those of
    :func:`_data_losing`, and a step with no inverse."""
    guards = _data_losing(step)
    call = _call(step)
    if call is not None and call[0] is RuntimeCall.IRREVERSIBLE:
        guards.append((step.description, str(step.irreversible_reason)))
    return guards


class _Code(str):
    """Source text rendered as it is (``policy``), not as a string literal."""

    def __repr__(self) -> str:
        return str(self)


_POLICY_KEYWORDS = ("lock_timeout", "statement_timeout", "attempts", "backoff")


def _with_policy(
    name: RuntimeCall, kwargs: dict[str, Any], step: Step, policy: RetryPolicy | None
) -> dict[str, Any]:
    """``kwargs`` with the timeouts and retries replaced by ``policy=policy`` (and only the values
    that differ from the revision's policy), for the calls that take a policy."""
    if policy is None or step.retry is None or not name.takes_policy:
        return kwargs
    shared = runtime_policy(policy)
    out: dict[str, Any] = {}
    placed = False
    for key, value in kwargs.items():
        if key in _POLICY_KEYWORDS:
            if not placed:
                out["policy"] = _Code("policy")
                placed = True
            if value != getattr(shared, key):
                out[key] = value
            continue
        out[key] = value
    if step.retry.backoff_max_s != policy.backoff_max_s:
        out["max_backoff"] = step.retry.backoff_max_s
    return out


def _literal_lines(value: Any, indent: int) -> list[str]:
    """``value`` as source lines: a list of more than one item (or too long) one item per line."""
    text = repr(value)
    if isinstance(value, list) and value and (len(value) > 1 or indent + len(text) + 1 > WIDTH):
        return ["[", *(f"    {item!r}," for item in value), "]"]
    return [text]


def _call_lines(callee: str, args: Sequence[Any], kwargs: dict[str, Any]) -> list[str]:
    """``callee(args..., key=value...)`` on one line when it fits in :data:`WIDTH` columns,
    otherwise one argument per line (SQL lists one statement per line)."""
    parts = [*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    one = f"{callee}({', '.join(parts)})"
    if BODY_INDENT + len(one) <= WIDTH:
        return [one]
    lines = [f"{callee}("]
    items: list[tuple[str, Any]] = [("", a) for a in args] + list(kwargs.items())
    for key, value in items:
        prefix = f"{key}=" if key else ""
        body = _literal_lines(value, BODY_INDENT + 4 + len(prefix))
        body[0] = prefix + body[0]
        body[-1] += ","
        lines += [f"    {line}" for line in body]
    return [*lines, ")"]


def step_acknowledgements(step: Step, call: RuntimeCall) -> tuple[Acknowledgement, ...]:
    """What the step's call meets on purpose: the step's own acknowledgements, and the ones that
    come with the runtime call (offline, a batched backfill is a ``DO`` loop that ``check``
    cannot look into)."""
    own = step.acknowledged
    if call is RuntimeCall.BACKFILL and step.backfill is not None and step.backfill.expression:
        own = (*own, Acknowledgement(
            (RuleCode.UNANALYSED_STATEMENT,), "runtime.backfill: batches by key, each its own short transaction (offline: a DO loop)"
        ))
    elif call is RuntimeCall.CHECK_CONVERTIBLE:
        own = (*own, Acknowledgement(
            (RuleCode.UNANALYSED_STATEMENT,), "runtime.check_convertible only reads (offline: a DO block that counts what fails)"
        ))
    return own


def step_lines(step: Step, policy: RetryPolicy | None = None) -> list[str]:
    """Python source lines (unindented) that run ``step`` in a revision file; with ``policy``,
    the revision's ``policy`` variable stands for the timeouts and retries that match it."""
    lines: list[str] = []
    if step.reason:
        lines += _comment(f"{step.description}: {step.reason}")
    else:
        lines += _comment(step.description)
    for description, reason in _data_losing(step):
        lines += _call_lines("runtime.data_losing_step", [_Code("op"), description, reason], {})
    call = _call(step)
    if call is None:
        return []
    name, args, kwargs = call
    lines += [ack.comment for ack in step_acknowledgements(step, name)]
    if name is RuntimeCall.EXECUTE:
        return lines + [line for sql in args[0] for line in _call_lines("op.execute", [sql], {})]
    kwargs = _with_policy(name, kwargs, step, policy)
    return [*lines, *_call_lines(f"runtime.{name.value}", [_Code("op"), *args], kwargs)]


def render_plan_op(autogen_context: AutogenContext, op: LockSafePlanOp) -> list[str]:
    """The revision source for a plan: a header, a comment per phase, a call per step."""
    autogen_context.imports.add("from helios_migrate import runtime")
    lines: list[str] = []
    if op.title:
        lines += _comment(f"helios: {op.title}")
    for note in op.notes:
        # A note's later lines are code to copy (a model line): each stays one comment line.
        first, *code_lines = note.split("\n")
        lines += _comment(f"note: {first}")
        lines += [f"#     {line.strip()}" for line in code_lines]
    phase: Phase | None = None
    for step in op.steps:
        body = step_lines(step, op.policy)
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
