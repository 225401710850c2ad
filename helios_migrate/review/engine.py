"""Review a schema: run every review rule, the column-design rules of ``check``, and plan fixes.

The schema-design rules of ``check`` (HM5xx: ``integer`` keys, ``serial``, ``varchar(n)``,
``timestamp``, ``char(n)``, ``json``) are statement rules; review asks them the question they
already answer, once per column, as if the column were being created.  So the advice, its code and
its suppressions are the same in a migration and in a review.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..changes import Change, ColumnDef, CreateTable, DropIndex, QualifiedName
from ..codes import RuleCode
from ..config import Config, ReviewIgnore
from ..findings import Finding, Location, Severity
from ..knowledge import effect_of
from ..plan import Plan, RetryPolicy, TransactionMode
from ..planner import PlanPolicy, UnknownFacts, plan_changes
from ..review_context import TOOL_TABLES, ReviewContext, SchemaViolation, ValueSampler
from ..rule_context import RuleContext, RuleKind, StatementInfo, TransactionInfo
from ..rules import Rule, registered_rules, rule_by_code
from ..schema_model import Schema, Table
from ..versions import PgVersion


@dataclass(frozen=True)
class ReviewFinding:
    """A finding, and what it is about (for suppressions and reports)."""

    finding: Finding
    table: QualifiedName
    column: str | None = None
    fix: Plan | None = None
    changes: tuple[Change, ...] = ()
    """The schema changes ``fix`` plans (what ``--write-revision`` hands to the Alembic plugin)."""
    recreate: tuple[Change, ...] = ()
    """For a fix that drops something: what re-creates it (the downgrade)."""


@dataclass(frozen=True)
class ReviewResult:
    findings: tuple[ReviewFinding, ...]
    """Sorted by table, column and code."""
    suppressed: tuple[tuple[ReviewFinding, ReviewIgnore], ...] = ()
    unused_ignores: tuple[ReviewIgnore, ...] = ()


def review_schema(
    schema: Schema, config: Config, version: PgVersion, *,
    enum_types: Mapping[str, tuple[str, ...]] | None = None, sampler: ValueSampler | None = None,
) -> ReviewResult:
    """Every finding of the enabled review and column-design rules on ``schema``.

    ``enum_types`` names the schema's enum types (with their labels); ``sampler`` reads a bounded
    sample of a column's values (live reviews only)."""
    ctx = ReviewContext(schema=schema, version=version, config=config, enum_types=dict(enum_types or {}),
                        sampler=sampler)
    raw: list[ReviewFinding] = []
    for rule in registered_rules():
        if not config.rule_enabled(rule.code):
            continue
        if rule.review is not None:
            raw += _run_review_rule(rule, ctx)
        elif rule.kind is RuleKind.OTHER and not rule.revision_only:
            raw += _column_design(rule, schema, config, version)
    kept: list[ReviewFinding] = []
    suppressed: list[tuple[ReviewFinding, ReviewIgnore]] = []
    for rf in raw:
        entry = config.review.ignored(rf.finding.code, rf.table, rf.column)
        if entry is None:
            kept.append(rf)
        else:
            suppressed.append((rf, entry))
    used = {entry for _, entry in suppressed}
    kept.sort(key=lambda rf: (str(rf.table), rf.column or "", rf.finding.code, rf.finding.message))
    return ReviewResult(
        findings=tuple(kept),
        suppressed=tuple(suppressed),
        unused_ignores=tuple(i for i in config.review.ignore if i not in used),
    )


def _subject(table: QualifiedName, column: str | None) -> str:
    return f"{table}.{column}" if column else str(table)


def _run_review_rule(rule: Rule, ctx: ReviewContext) -> Iterator[ReviewFinding]:
    assert rule.review is not None
    try:
        violations = list(rule.review(ctx))
    except Exception as exc:  # a rule bug must not stop the review
        yield _rule_failed(rule, exc, ctx.schema)
        return
    for v in violations:
        yield _finding(rule, v, ctx)


def _rule_failed(rule: Rule, exc: Exception, schema: Schema) -> ReviewFinding:
    tool = rule_by_code(RuleCode.UNANALYSED_STATEMENT)
    where = schema.label or schema.source.value
    return ReviewFinding(
        Finding(
            RuleCode.UNANALYSED_STATEMENT, tool.name, tool.severity, f"rule {rule.code} {rule.name} failed: {exc!r}",
            Location(where), help="Report this as a bug of the rule's package.",
        ),
        table=QualifiedName(where),
    )


def _finding(rule: Rule, v: SchemaViolation, ctx: ReviewContext) -> ReviewFinding:
    severity = ctx.config.severity_for(rule.code, v.severity or rule.severity)
    fix = _plan(v.fix, v.recreate, ctx) if v.fix else None
    help_text = v.help
    if fix is not None and fix.steps:
        help_text = f"{help_text}\n{render_fix(fix)}" if help_text else render_fix(fix)
    finding = Finding(
        code=rule.code, rule=rule.name, severity=severity, message=v.message,
        location=Location(_subject(v.table, v.column)), help=help_text,
    )
    return ReviewFinding(finding, v.table, v.column, fix, tuple(v.fix), tuple(v.recreate))


@dataclass(frozen=True)
class SchemaFacts(UnknownFacts):
    """What the planner asks about existing tables, answered from the reviewed schema.

    Whether a table has rows is left unknown (the planner then assumes it has): a row estimate
    can be stale, and a fix must not take a blocking form because of one."""

    schema: Schema

    def has_rows(self, table: QualifiedName) -> bool | None:
        return None

    def covering_index(self, table: QualifiedName, columns: Sequence[str]) -> str | None:
        t = self.schema.table(table)
        hit = next((ix for ix in t.indexes if ix.valid and ix.leads_with(columns)), None) if t else None
        return hit.name or ",".join(hit.elements) if hit is not None else None

    def primary_key(self, table: QualifiedName) -> tuple[str, ...] | None:
        t = self.schema.table(table)
        return t.primary_key or None if t is not None else None

    def partitions(self, table: QualifiedName) -> tuple[QualifiedName, ...] | None:
        t = self.schema.table(table)
        return t.partitions or None if t is not None and t.partitioned else None


def _plan(fix: Sequence[Change], recreate: Sequence[Change], ctx: ReviewContext) -> Plan:
    drops = [ch for ch in fix if isinstance(ch, DropIndex)]
    mapping: dict[Change, Sequence[Change]] = {drop: tuple(recreate) for drop in drops} if recreate else {}
    return plan_changes(
        fix, ctx.version, facts=SchemaFacts(ctx.schema), policy=PlanPolicy.from_config(ctx.config),
        recreate=mapping,
    )


FIX_HEADING = "Lock-safe fix (each statement on its own; CONCURRENTLY cannot run in a transaction):"


def render_fix(plan: Plan, *, as_sql: bool = False) -> str:
    """The plan as SQL a person can read and run, then its undo; ``as_sql``: headings as SQL
    comments and no indentation (a script)."""
    indent, heading = ("", "-- ") if as_sql else ("  ", "")
    lines = [heading + FIX_HEADING]
    for step in plan.steps:
        lines += _step_lines(step.sql, step.transaction, step.retry, indent)
    undo = [s for s in (s.reversed() for s in plan.downgrade_steps()) if s.sql]
    if undo:
        lines.append(heading + "Undo:")
        for step in undo:
            lines += _step_lines(step.sql, step.transaction, step.retry, indent)
    return "\n".join(lines)


def _step_lines(sql: Iterable[str], mode: TransactionMode, retry: RetryPolicy | None, indent: str) -> list[str]:
    out = []
    if mode is TransactionMode.OWN and retry is not None and retry.lock_timeout_ms:
        out.append(f"{indent}SET lock_timeout = '{retry.lock_timeout_ms}ms';")
    out += [f"{indent}{statement.rstrip().rstrip(';')};" for statement in sql]
    return out


# --- the column-design rules of check, asked per column ------------------------------------------


def _column_design(rule: Rule, schema: Schema, config: Config, version: PgVersion) -> Iterator[ReviewFinding]:
    for table in schema.tables:
        if table.name.name in TOOL_TABLES:
            continue
        for change, column in _column_changes(table):
            effect = effect_of(change, version)
            statement = StatementInfo(
                index=0, sql=f"-- column {_subject(table.name, column)}", location=Location(_subject(table.name, column)),
                node_type="CreateStmt", changes=(change,), effects=(effect,),
                transaction=TransactionInfo(in_block=False, number=0),
            )
            ctx = RuleContext(
                change=change, effect=effect, change_index=0, statement=statement, earlier=(), later=(),
                version=version, config=config, all_statements=(statement,), created_tables=(table.name,),
            )
            try:
                violations = list(rule.check(ctx))
            except Exception as exc:  # a rule bug must not stop the review: reported once per rule
                yield _rule_failed(rule, exc, schema)
                return
            for v in violations:
                severity = config.severity_for(rule.code, v.severity or rule.severity)
                yield ReviewFinding(
                    Finding(
                        code=rule.code, rule=rule.name, severity=severity, message=v.message,
                        location=Location(_subject(table.name, column)),
                        help=_existing_column_help(v.help, schema),
                    ),
                    table=table.name,
                    column=column,
                )


def _column_changes(table: Table) -> Iterator[tuple[CreateTable, str]]:
    for col in table.columns:
        coldef = ColumnDef(
            name=col.name, type=col.type, nullable=col.nullable, default=col.default,
            identity=col.identity, primary_key=col.name in table.primary_key,
        )
        yield CreateTable(on=table.name, columns=(coldef,)), col.name


def _existing_column_help(advice: str, schema: Schema) -> str:
    note = (
        "For an existing column, change the model and let autogenerate plan the type change "
        "(expand-contract, no long lock)."
    )
    return f"{advice}\n{note}" if advice else note


def fails(result: ReviewResult, fail_on: Severity) -> bool:
    return any(rf.finding.severity >= fail_on for rf in result.findings)
