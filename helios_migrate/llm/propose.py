"""Lock-safe plans proposed by a model for SQL the rules cannot plan (raw ``op.execute``).

:func:`propose_plan` asks for a plan in helios-migrate's own vocabulary (:mod:`..plan`), and
accepts it only when all of these hold:

* the answer is a JSON object matching :data:`~.schema.PLAN_SCHEMA` exactly;
* every SQL statement parses with pglast (PostgreSQL's grammar) and none controls transactions
  (how a step runs is said by its ``transaction``, not by ``BEGIN``/``COMMIT``);
* every statement is of a kind its step declares;
* nothing is dropped, truncated or deleted that the user's SQL does not drop, truncate or delete;
* the knowledge base finds no step holding a lock that blocks writes (or reads) while it rewrites,
  scans or builds an index on an existing table, no statement the server version refuses, and no
  statement that must run outside a transaction placed inside one;
* the safety rules, run on the plan as it will execute, report no blocking finding and none of the
  locking, rewrite, destructive or transaction findings the user's own SQL did not already have.

A rejected answer is sent back with these reasons (bounded); the caller keeps its deterministic
result when no answer passes.  Accepted steps are marked ``LLM-proposed:`` in their ``reason``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pglast import ast

from ..changes import (
    AddColumn,
    AddConstraint,
    Change,
    ConstraintKind,
    CreateIndex,
    CreateTable,
    DataOperation,
    DropColumn,
    DropConstraint,
    DropEnum,
    DropIndex,
    DropTable,
    DropView,
    ModifyRows,
    QualifiedName,
    SetNotNull,
    TransactionControl,
    TruncateTable,
    ValidateConstraint,
)
from ..config import Config
from ..effects import WorkClass
from ..findings import Finding, Severity
from ..knowledge import SchemaLookup, describe, effect_of
from ..lint import lint_sql
from ..plan import Backfill, Origin, Phase, Plan, RetryPolicy, Step, TransactionMode
from ..sql_parse import SqlSyntaxError, parse_statements
from ..versions import PgVersion, default_version
from .ask import Attempt, ask_validated
from .client import LlmClient
from .prompts import data_block, system_prompt
from .schema import PLAN_SCHEMA, STEP_KINDS
from .sql_guard import GuardError, Judged, Scope, deparse, judge, scope_of, walk
from .untrusted import one_line

LLM_MARK = "LLM-proposed:"
_MODES = {
    "migration": TransactionMode.MIGRATION,
    "own": TransactionMode.OWN,
    "autocommit": TransactionMode.AUTOCOMMIT,
}
_LONG_WORK = (WorkClass.REWRITE, WorkClass.SCAN, WorkClass.INDEX_BUILD)
_IS_NOT_NULL = re.compile(r'^\(?"?([^"\s()]+)"?\s+IS\s+NOT\s+NULL\)?$', re.IGNORECASE)
_GUARDED_PREFIXES = ("HM1", "HM2", "HM3", "HM4")


@dataclass(frozen=True)
class PlanContext:
    """What the proposal is judged against."""

    client: LlmClient | None = None
    version: PgVersion = field(default_factory=default_version)
    config: Config = field(default_factory=Config)
    catalog: SchemaLookup | None = None
    where: str = ""
    """Where the SQL comes from, for the prompt (``op.execute in revision 1a2b``); no paths with secrets."""
    facts: tuple[str, ...] = ()
    """Facts about the tables involved (sizes, row estimates), one line each."""
    primary_key: Callable[[QualifiedName], tuple[str, ...] | None] | None = None
    """The primary key of a table, for proposed backfills (``id`` when unknown)."""


@dataclass(frozen=True)
class ProposalResult:
    accepted: Plan | None
    reasons: tuple[str, ...]
    """Why no plan was accepted (empty when one was)."""
    attempts: int
    history: tuple[Attempt, ...] = ()

    @property
    def message(self) -> str:
        if self.accepted is not None:
            return f"LLM-proposed plan accepted after {self.attempts} attempt(s)"
        if self.attempts == 0:
            return "no LLM plan: " + "; ".join(self.reasons)
        return (
            f"LLM plan rejected after {self.attempts} attempt(s); the deterministic result is kept. "
            "Reasons: " + "; ".join(self.reasons)
        )


def propose_plan(sql: str, context: PlanContext) -> ProposalResult:
    """Ask the configured model for a lock-safe plan for ``sql``; validate it; never trust it."""
    if context.client is None:
        return ProposalResult(None, ("LLM not configured (see `helios-migrate llm check`)",), 0)
    try:
        requested = [ch for st in parse_statements(sql, "requested SQL") for ch in st.changes]
        scope = scope_of(sql)
    except (SqlSyntaxError, ValueError) as exc:
        return ProposalResult(None, (f"the SQL to plan does not parse: {exc}",), 0)
    baseline = {f.code for f in _lint(sql, context)}
    effects = describe(effect_of(ch, context.version, context.catalog) for ch in requested)
    system = system_prompt(_TASK, PLAN_SCHEMA)
    parts = [
        f"Target PostgreSQL version: {context.version}.",
        f"Where the SQL comes from: {context.where or 'a migration'}.",
        data_block("sql to plan", sql),
        data_block("what helios-migrate's lock knowledge base says about it", "\n".join(effects)),
    ]
    if context.facts:
        parts.append(data_block("table facts", "\n".join(context.facts)))
    validator = _PlanValidator(requested, baseline, context, scope)
    outcome = ask_validated(
        context.client,
        system=system,
        user="\n\n".join(parts),
        schema=PLAN_SCHEMA,
        schema_name="helios_plan",
        purpose="propose plan",
        check=validator,
    )
    return ProposalResult(outcome.value, outcome.reasons, outcome.attempts, outcome.history)


_TASK = """Propose a lock-safe, multi-step plan that does what the SQL below does on a live, busy database.
Rules of a lock-safe plan:
- Never hold ACCESS EXCLUSIVE (or any lock that blocks writes) while a table is rewritten, scanned or indexed.
- Indexes: CREATE INDEX CONCURRENTLY IF NOT EXISTS, in an 'autocommit' step; DROP INDEX CONCURRENTLY likewise.
- Constraints: ADD ... NOT VALID in one step, VALIDATE CONSTRAINT in a later 'own' step.
- SET NOT NULL: add CHECK (col IS NOT NULL) NOT VALID, validate it, then SET NOT NULL, then drop the check.
- Backfills: a 'backfill_batch' step holds one `UPDATE <table> SET <column> = <expression> WHERE <condition>`
  whose WHERE says which rows still need the value (e.g. `<column> IS NULL`); helios-migrate runs it in
  small batches by primary key itself (no LIMIT, no subquery in the WHERE).
- Only act on the tables the SQL names; only ALTER TABLE, CREATE/DROP INDEX, RENAME, UPDATE/INSERT/DELETE
  and SET of timeouts. No functions, triggers, DO blocks, COPY, GRANT or catalog functions.
- Never drop, truncate or delete anything the SQL does not drop, truncate or delete.
- One SQL statement per item of "sql"; no BEGIN/COMMIT (say how a step runs with "transaction":
  'migration' = inside the migration's transaction, 'own' = a short transaction of its own with lock_timeout,
  'autocommit' = outside any transaction).
- Give "inverse_sql" that undoes each step, or null with an "irreversible_reason".
- Use phases: expand (additive), backfill (data), contract (removes or renames)."""


class _PlanValidator:
    def __init__(
        self, requested: Sequence[Change], baseline: set[str], context: PlanContext, scope: Scope
    ) -> None:
        self.requested = list(requested)
        self.baseline = baseline
        self.context = context
        self.scope = scope

    def __call__(self, obj: dict[str, Any]) -> tuple[Plan | None, list[str]]:
        reasons: list[str] = []
        steps: list[Step] = []
        created: set[QualifiedName] = {ch.on for ch in self.requested if isinstance(ch, CreateTable)}
        created_indexes: set[str] = set()
        self._pending_checks: dict[tuple[str, str], str] = {}
        self._proven: set[tuple[str, str]] = set()
        self._added_constraints: set[str] = set()
        for number, raw in enumerate(obj["steps"], start=1):
            step, step_reasons = self._step(number, raw, created, created_indexes)
            reasons += step_reasons
            if step is not None:
                steps.append(step)
        if reasons:
            return None, reasons
        script = render_for_lint(steps, self.context.config)
        for finding in _lint(script, self.context):
            if self._rejects(finding):
                reasons.append(
                    f"safety rule {finding.code} ({finding.rule}, {finding.severity}) on "
                    f"`{_short(finding.statement)}`: {finding.message}"
                )
        if reasons:
            return None, reasons
        notes = tuple(_clean(n) for n in obj["notes"] if n.strip())
        client = self.context.client
        origin = f"model {client.model!r} at {client.base_url}" if client is not None else "a model"
        plan = Plan(
            steps=tuple(steps),
            source=tuple(self.requested),
            notes=(
                f"{LLM_MARK} plan proposed by {origin}; checked by pglast, the lock knowledge base "
                "and the safety rules",
                *notes,
            ),
        )
        return plan, []

    def _rejects(self, finding: Finding) -> bool:
        if finding.severity < Severity.WARNING:
            return False
        if finding.code.startswith("HM9") or self.context.config.fails(finding.severity):
            return True
        return finding.code.startswith(_GUARDED_PREFIXES) and finding.code not in self.baseline

    def _step(
        self,
        number: int,
        raw: dict[str, Any],
        created: set[QualifiedName],
        created_indexes: set[str],
    ) -> tuple[Step | None, list[str]]:
        label = f"step {number} ({raw['kind']})"
        reasons: list[str] = []
        mode = _MODES[raw["transaction"]]
        changes: list[Change] = []
        judged: list[Judged] = []
        for j, text in enumerate(raw["sql"]):
            statement, statement_reasons = self._judge(f"{label} sql[{j}]", text)
            reasons += statement_reasons
            if statement is not None:
                judged.append(statement)
                changes += self._changes(statement)
        inverse_raw = raw["inverse_sql"]
        inverse: list[str] | None = None if inverse_raw is None else []
        for j, text in enumerate(inverse_raw or ()):
            statement, statement_reasons = self._judge(f"{label} inverse_sql[{j}]", text)
            reasons += statement_reasons
            if statement is not None and inverse is not None:
                inverse.append(statement.sql)
                for ch in self._changes(statement):
                    reasons += self._destructive_inverse(f"{label} inverse_sql[{j}]", ch, changes)
        if inverse is None and not (raw["irreversible_reason"] or "").strip():
            reasons.append(f"{label}: inverse_sql is null but irreversible_reason does not say why")
        reasons += self._kind(label, raw["kind"], changes)
        for ch in changes:
            reasons += self._destructive(label, ch, created_indexes)
            reasons += self._effect(label, ch, mode, created)
            if isinstance(ch, CreateTable):
                created.add(ch.on)
            if isinstance(ch, CreateIndex) and ch.name:
                created_indexes.add(ch.name)
            self._track_not_null_proof(ch)
            if isinstance(ch, AddConstraint) and ch.constraint.name:
                self._added_constraints.add(ch.constraint.name)
        backfill: Backfill | None = None
        if raw["kind"] == "backfill_batch" and not reasons:
            backfill, backfill_reasons = self._backfill(label, judged)
            reasons += backfill_reasons
        if reasons:
            return None, reasons
        strong = mode is not TransactionMode.MIGRATION
        config = self.context.config
        description = _clean(raw["description"])
        if backfill is not None:
            return Step(
                description=description,
                phase=Phase(raw["phase"]),
                changes=tuple(changes),
                transaction=TransactionMode.AUTOCOMMIT,
                retry=RetryPolicy(attempts=config.lock_retries),
                backfill=backfill,
                inverse=tuple(inverse) if inverse is not None else None,
                irreversible_reason=_clean(raw["irreversible_reason"]) if inverse is None else None,
                reason=f"{LLM_MARK} {_clean(raw['rationale'])}",
                origin=Origin.LLM,
            ), []
        step = Step(
            description=description,
            phase=Phase(raw["phase"]),
            sql=tuple(statement.sql for statement in judged),
            changes=tuple(changes),
            transaction=mode,
            retry=RetryPolicy(attempts=config.lock_retries) if strong else None,
            inverse=tuple(inverse) if inverse is not None else None,
            irreversible_reason=_clean(raw["irreversible_reason"]) if inverse is None else None,
            reason=f"{LLM_MARK} {_clean(raw['rationale'])}",
            origin=Origin.LLM,
        )
        return step, []

    def _judge(self, label: str, text: str) -> tuple[Judged | None, list[str]]:
        """The statement as judged by the guard (re-deparsed), or why it is refused."""
        try:
            return judge(text, self.scope), []
        except GuardError as exc:
            return None, [f"{label}: {exc} (`{_short(text)}`)"]

    @staticmethod
    def _changes(statement: Judged) -> list[Change]:
        return [ch for st in parse_statements(statement.sql, "proposed SQL") for ch in st.changes]

    def _backfill(self, label: str, judged: list[Judged]) -> tuple[Backfill | None, list[str]]:
        """A backfill step runs through the runtime's batched keyset loop, never as one UPDATE."""
        if len(judged) != 1 or not isinstance(judged[0].node, ast.UpdateStmt):
            return None, [f"{label}: a backfill step is exactly one UPDATE"]
        update = judged[0].node
        if update.fromClause or update.withClause or update.returningClause:
            return None, [f"{label}: a backfill UPDATE has no FROM, WITH or RETURNING"]
        targets = list(update.targetList or ())
        if len(targets) != 1 or targets[0].indirection or update.relation is None:
            return None, [f"{label}: a backfill UPDATE sets exactly one column"]
        if update.whereClause is None:
            return None, [f"{label}: a backfill UPDATE needs a WHERE saying which rows still need the value"]
        if any(isinstance(n, ast.SubLink) for n in walk(update.whereClause)):
            return None, [
                f"{label}: the WHERE of a backfill says which rows still need the value; no subquery "
                "(helios-migrate does the batching)"
            ]
        relation = update.relation
        table = QualifiedName(str(relation.relname), relation.schemaname or None)
        target = targets[0]
        key = self.context.primary_key(table) if self.context.primary_key is not None else None
        config = self.context.config
        return Backfill(
            table=table,
            column=target.name,
            expression=deparse(target.val),
            key=key or ("id",),
            where=deparse(update.whereClause),
            batch_size=int(config.backfill_batch_size),
            pause_ms=int(config.backfill_pause_ms),
        ), []

    def _destructive_inverse(self, label: str, ch: Change, forward: list[Change]) -> list[str]:
        """An inverse may drop only what its own step created, or what the user's SQL drops."""
        made_columns = {(c.on.name, c.column.name) for c in forward if isinstance(c, AddColumn)}
        made_indexes = {c.name for c in forward if isinstance(c, CreateIndex) and c.name}
        made_tables = {c.on.name for c in forward if isinstance(c, CreateTable)}
        made_constraints = {
            c.constraint.name for c in forward if isinstance(c, AddConstraint) and c.constraint.name
        }
        if isinstance(ch, DropColumn) and (ch.on.name, ch.column) in made_columns:
            return []
        if isinstance(ch, DropIndex) and ch.index.name in made_indexes:
            return []
        if isinstance(ch, DropTable) and ch.on.name in made_tables:
            return []
        if isinstance(ch, DropConstraint) and ch.name in made_constraints:
            return []
        if isinstance(ch, DropColumn | DropIndex | DropTable | DropConstraint | TruncateTable):
            return [f"{label}: the inverse drops {ch.kind.removeprefix('drop_')} that its step did not create"]
        if isinstance(ch, ModifyRows) and ch.operation is DataOperation.DELETE:
            return [f"{label}: the inverse deletes rows"]
        return []

    def _track_not_null_proof(self, ch: Change) -> None:
        """A validated ``CHECK (c IS NOT NULL)`` lets ``SET NOT NULL`` skip its scan (PostgreSQL 12+)."""
        if isinstance(ch, AddConstraint) and ch.constraint.kind is ConstraintKind.CHECK and ch.constraint.name:
            match = _IS_NOT_NULL.match(ch.constraint.expression or "")
            if match:
                key = (ch.on.name, ch.constraint.name)
                if ch.constraint.not_valid:
                    self._pending_checks[key] = match.group(1)
                else:
                    self._proven.add((ch.on.name, match.group(1)))
        elif isinstance(ch, ValidateConstraint) and (ch.on.name, ch.name) in self._pending_checks:
            self._proven.add((ch.on.name, self._pending_checks[(ch.on.name, ch.name)]))

    def _kind(self, label: str, kind: str, changes: list[Change]) -> list[str]:
        allowed = STEP_KINDS[kind]
        reasons = []
        for ch in changes:
            if isinstance(ch, TransactionControl):
                reasons.append(
                    f"{label}: {ch.action.value.upper()} is not allowed; say how the step runs with "
                    "\"transaction\" instead"
                )
            elif allowed and not isinstance(ch, allowed):
                reasons.append(f"{label}: a {kind} step may not contain {ch.kind}")
        if kind == "create_index_concurrently":
            reasons += [f"{label}: CREATE INDEX must be CONCURRENTLY" for ch in changes
                        if isinstance(ch, CreateIndex) and not ch.concurrently]
        if kind in ("create_index_concurrently", "drop_index_concurrently"):
            reasons += [f"{label}: DROP INDEX must be CONCURRENTLY" for ch in changes
                        if isinstance(ch, DropIndex) and not ch.concurrently]
        if kind == "add_constraint_not_valid":
            reasons += [
                f"{label}: {ch.constraint.kind.value} constraint must be added NOT VALID"
                for ch in changes
                if isinstance(ch, AddConstraint)
                and ch.constraint.kind in (ConstraintKind.CHECK, ConstraintKind.FOREIGN_KEY)
                and not ch.constraint.not_valid
            ]
        if kind == "backfill_batch":
            reasons += [f"{label}: a batch must have a WHERE clause limiting it to some rows"
                        for ch in changes if isinstance(ch, ModifyRows) and not ch.has_where
                        and ch.operation is not DataOperation.INSERT]
        return reasons

    def _destructive(self, label: str, ch: Change, created_indexes: set[str]) -> list[str]:
        req = self.requested

        def asked(pred: Any) -> bool:
            return any(pred(r) for r in req)

        if isinstance(ch, DropTable) and not asked(lambda r: isinstance(r, DropTable) and _same(r.on, ch.on)):
            return [f"{label}: drops table {ch.on}, which the SQL does not drop"]
        if isinstance(ch, TruncateTable) and not asked(
            lambda r: isinstance(r, TruncateTable) and _same(r.on, ch.on)
        ):
            return [f"{label}: truncates {ch.on}, which the SQL does not truncate"]
        if isinstance(ch, DropColumn) and not asked(
            lambda r: isinstance(r, DropColumn) and _same(r.on, ch.on) and r.column == ch.column
        ):
            return [f"{label}: drops column {ch.on}.{ch.column}, which the SQL does not drop"]
        if isinstance(ch, (DropView, DropEnum)) and not asked(
            lambda r: type(r) is type(ch) and _same(r.name, ch.name)
        ):
            return [f"{label}: drops {ch.kind.removeprefix('drop_')} {ch.name}, which the SQL does not drop"]
        if isinstance(ch, DropConstraint) and ch.name not in self._added_constraints and not asked(
            lambda r: isinstance(r, DropConstraint) and r.name == ch.name
        ):
            return [f"{label}: drops constraint {ch.name}, which the SQL does not drop"]
        if isinstance(ch, DropIndex) and ch.index.name not in created_indexes and not asked(
            lambda r: isinstance(r, DropIndex) and r.index.name == ch.index.name
        ):
            return [f"{label}: drops index {ch.index}, which the SQL does not drop"]
        if (
            isinstance(ch, ModifyRows)
            and ch.operation is DataOperation.DELETE
            and not asked(lambda r: isinstance(r, ModifyRows) and r.operation is DataOperation.DELETE
                          and _same(r.on, ch.on))
        ):
            return [f"{label}: deletes rows from {ch.on}, which the SQL does not do"]
        return []

    def _effect(
        self, label: str, ch: Change, mode: TransactionMode, created: set[QualifiedName]
    ) -> list[str]:
        effect = effect_of(ch, self.context.version, self.context.catalog)
        reasons = []
        if effect.unsupported:
            reasons.append(f"{label}: PostgreSQL {self.context.version} refuses {ch.kind}: {effect.unsupported}")
        if effect.transaction.value == "outside transaction only" and mode is not TransactionMode.AUTOCOMMIT:
            reasons.append(f"{label}: {ch.kind} cannot run inside a transaction; use \"transaction\": \"autocommit\"")
        proven = isinstance(ch, SetNotNull) and (ch.on.name, ch.column) in self._proven
        if (effect.work in _LONG_WORK or effect.rewrites_table) and not proven:
            for lock in effect.locks:
                if not lock.blocking or any(_same(lock.relation, t) for t in created):
                    continue
                if lock.mode.blocks_writes:
                    what = "rewrite" if effect.rewrites_table else effect.work.value
                    reasons.append(
                        f"{label}: {ch.kind} takes {lock.mode.sql_name} on {lock.relation} "
                        f"(blocks {lock.mode.blocked_summary()}) during a {what}"
                    )
        return reasons


def _same(a: QualifiedName | None, b: QualifiedName | None) -> bool:
    if a is None or b is None:
        return False
    return a.name == b.name and (a.schema is None or b.schema is None or a.schema == b.schema)


def _clean(text: str | None) -> str:
    """Model text that may end up in comments: one line, printable."""
    return one_line(text)


def _short(sql: str) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= 80 else one[:77] + "..."


def render_for_lint(steps: Sequence[Step], config: Config) -> str:
    """The plan as the statements it runs, with the transaction boundaries the runtime gives it."""
    lines = [f"SET lock_timeout = '{config.lock_timeout}';", "BEGIN;"]
    for step in steps:
        body = [s.rstrip().rstrip(";") + ";" for s in step.sql]
        if step.transaction is TransactionMode.MIGRATION:
            lines += body
        elif step.transaction is TransactionMode.OWN:
            lines += ["COMMIT;", "BEGIN;", *body, "COMMIT;", "BEGIN;"]
        else:
            lines += ["COMMIT;", *body, "BEGIN;"]
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _lint(sql: str, context: PlanContext) -> list[Finding]:
    return lint_sql(sql, "llm-plan.sql", config=context.config, version=context.version, catalog=context.catalog)
