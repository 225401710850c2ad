"""The rule engine: SQL statements in execution order -> findings.

Front ends (``check`` for Alembic revisions and ``.sql`` files) give :func:`lint` one
:class:`LintInput` per file: the statements in the order they run, with where each came from, and
the file's suppression comments.  The engine

1. parses each statement (pglast) into :mod:`~helios_migrate.changes` values; a statement that
   does not parse becomes an HM901 finding and the rest is still checked;
2. asks the lock knowledge base (:func:`~helios_migrate.knowledge.effect_of`) for each change's
   :class:`~helios_migrate.effects.Effect` on the target server version;
3. follows the transaction structure (``BEGIN``/``COMMIT``, as Alembic's offline SQL shows its
   migration transaction and autocommit blocks), ``SET [LOCAL] lock_timeout`` /
   ``statement_timeout``, the locks held so far, tables created earlier in the input, constraints
   added ``NOT VALID`` and columns proven free of NULLs;
4. runs every enabled rule of the installed rule packages
   (:func:`~helios_migrate.rules.registered_rules`) on every change of the kinds the rule looks at
   (its ``CHANGES``; every change when it declares none), applies the
   configuration (selection, severities, ``small`` and ``hot`` tables) and the suppressions, and
   reports suppressions that suppressed nothing (HM902).

It never raises for bad input: problems become findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from pglast import split

from .changes import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    Change,
    ConstraintKind,
    CreateTable,
    DropIndex,
    QualifiedName,
    RawStatement,
    SetSetting,
    TransactionAction,
    TransactionControl,
    ValidateConstraint,
)
from .codes import RuleCode
from .config import Config
from .effects import Certainty, Effect, RelationLock, RelationRole, WorkClass
from .findings import Finding, Location, Severity
from .knowledge import SchemaLookup, effect_of
from .rule_context import (
    RuleContext,
    RuleKind,
    StatementInfo,
    StaticTableFacts,
    TableFacts,
    TableSize,
    TransactionInfo,
    Violation,
    same_relation,
)
from .rules import Rule, registered_rules, rule_by_code
from .sql_parse import SqlSyntaxError, Statement, parse_statements
from .suppression import Suppression, parse_sql_suppressions
from .versions import PgVersion

__all__ = [
    "LintInput",
    "SourceStatement",
    "StaticTableFacts",
    "TableFacts",
    "TableSize",
    "lint",
    "lint_sql",
]

_TIMEOUTS = ("lock_timeout", "statement_timeout")
_SET_CONFIG = re.compile(
    r"set_config\s*\(\s*'(?P<name>lock_timeout|statement_timeout)'\s*,\s*'(?P<value>[^']*)'\s*,"
    r"\s*(?P<local>true|false)\s*\)",
    re.IGNORECASE,
)
_ZERO = re.compile(r"^\s*0+\s*(us|ms|s|min|h|d)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SourceStatement:
    """SQL to lint, with where it came from.

    ``sql`` may hold one statement or several.  ``location`` is where findings point:

    * for an SQL file, the position of the first character of ``sql`` in the file (``line`` 1,
      ``column`` 1 for a whole file); each statement inside is then located at its own line and
      column, and so are syntax errors;
    * for an Alembic revision (a ``.py`` path), the ``op.*`` call that emitted the SQL; every
      statement of ``sql`` points there.
    """

    sql: str
    location: Location
    revision: str | None = None
    column_types: tuple[tuple[str, str, str], ...] = ()
    """``(table, column, type)`` known before the statement runs although the SQL does not say
    (Alembic's ``existing_type``): lets a type change be judged exactly offline."""
    index_tables: tuple[tuple[str, str], ...] = ()
    """``(index, table)`` for a ``DROP INDEX`` whose table the SQL does not name but the source
    did (Alembic's ``drop_index(table_name=...)``)."""
    created_tables: tuple[str, ...] = ()
    """Tables created here by code whose SQL is not shown (an application's ``create_table``
    helper that could not be rendered): later statements treat them as new."""


@dataclass(frozen=True)
class LintInput:
    """One file to lint: its statements in execution order and its suppression comments."""

    path: str
    statements: tuple[SourceStatement, ...]
    """In execution order, including ``BEGIN``/``COMMIT``/``SET`` statements as emitted (Alembic's
    offline SQL shows an autocommit block as ``COMMIT; ...; BEGIN;``)."""
    suppressions: tuple[Suppression, ...] = ()
    """Parsed from the file's comments (:mod:`helios_migrate.suppression`)."""
    in_transaction: bool = False
    """The statements run inside a transaction that the SQL does not show (a migration runner
    that wraps each file in one).  ``BEGIN``/``COMMIT`` in the SQL are still followed."""


def lint(
    inputs: LintInput,
    *,
    config: Config,
    version: PgVersion,
    catalog: SchemaLookup | None = None,
    facts: TableFacts | None = None,
) -> list[Finding]:
    """Findings for ``inputs``, ordered by location, suppressions applied."""
    walker = _Walker(inputs, config, version, catalog)
    walker.walk()
    findings = list(walker.problems)
    findings += _run_rules(walker.statements, walker, config, version, catalog, facts)
    findings = _dedupe(findings)
    findings = _apply_suppressions(findings, inputs, config)
    order = {rule.code: i for i, rule in enumerate(registered_rules())}
    return sorted(findings, key=lambda f: (f.location.line, f.location.column, order.get(f.code, 999)))


def lint_sql(
    sql: str,
    path: str,
    *,
    config: Config,
    version: PgVersion,
    catalog: SchemaLookup | None = None,
    facts: TableFacts | None = None,
) -> list[Finding]:
    """Lint the text of an SQL file: statements, positions and ``-- helios:`` comments from ``sql``."""
    return lint(
        LintInput(path, (SourceStatement(sql, Location(path, 1, 1)),), parse_sql_suppressions(sql)),
        config=config,
        version=version,
        catalog=catalog,
        facts=facts,
    )


# --- pass 1: parse and follow transactions ------------------------------------------------------


@dataclass
class _Snapshot:
    created: tuple[QualifiedName, ...]
    not_valid: dict[tuple[str, str], StatementInfo]
    proven: frozenset[tuple[str, str]]
    checked: frozenset[str]
    held: tuple[RelationLock, ...]


@dataclass
class _Walker:
    inputs: LintInput
    config: Config
    version: PgVersion
    catalog: SchemaLookup | None
    statements: list[StatementInfo] = field(default_factory=list)
    snapshots: list[_Snapshot] = field(default_factory=list)
    bookkeeping: set[int] = field(default_factory=set)
    problems: list[Finding] = field(default_factory=list)

    # transaction state
    in_block: bool = False
    number: int = 0
    session: dict[str, str | None] = field(default_factory=dict)
    local: dict[str, str | None] = field(default_factory=dict)
    held: dict[QualifiedName, RelationLock] = field(default_factory=dict)
    created: list[QualifiedName] = field(default_factory=list)
    not_valid: dict[tuple[str, str], tuple[StatementInfo, AddConstraint]] = field(default_factory=dict)
    proven: set[tuple[str, str]] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    column_types: dict[tuple[str, str], str] = field(default_factory=dict)
    """Types of columns created or changed earlier in the input: a later type change is judged
    exactly."""

    def walk(self) -> None:
        self.in_block = self.inputs.in_transaction
        self.number = 1
        for src in self.inputs.statements:
            self.created += [QualifiedName.parse(t) for t in src.created_tables]
            for parsed, location in self._parse(src):
                self._statement(parsed, location, src)

    # parsing ---------------------------------------------------------------------------------

    def _parse(self, src: SourceStatement) -> list[tuple[Statement, Location]]:
        try:
            return [(st, _inner_location(src, st.line, st.column, st.sql)) for st in parse_statements(src.sql, self.inputs.path)]
        except SqlSyntaxError:
            pass
        out: list[tuple[Statement, Location]] = []
        try:
            pieces = list(split(src.sql, with_parser=False, only_slices=True))
        except Exception:
            pieces = [slice(0, len(src.sql))]
        for piece in pieces:
            text = src.sql[piece]
            line, column = _line_col(src.sql, piece.start or 0)
            try:
                for st in parse_statements(text, self.inputs.path):
                    st_line = line + st.line - 1
                    st_col = column + st.column - 1 if st.line == 1 else st.column
                    out.append((st, _inner_location(src, st_line, st_col, st.sql)))
            except SqlSyntaxError as err:
                err_line = line + err.line - 1
                err_col = column + err.column - 1 if err.line == 1 else err.column
                loc = _inner_location(src, err_line, err_col, "")
                self.problems.append(
                    _tool_finding(
                        RuleCode.SYNTAX_ERROR, loc,
                        f"does not parse: {err.message}"
                        + ("" if loc.line == err_line else f" (line {err.line}, column {err.column} of the SQL)"),
                        "Fix the SQL; PostgreSQL would reject it.", text.strip(), src.revision,
                    )
                )
        return out

    # state machine -----------------------------------------------------------------------------

    def _timeouts(self) -> tuple[str | None, str | None]:
        values = []
        for name in _TIMEOUTS:
            value = self.local[name] if name in self.local else self.session.get(name)
            values.append(None if value is None or _ZERO.match(value) else value)
        return values[0], values[1]

    def _statement(self, st: Statement, location: Location, src: SourceStatement) -> None:
        declared = src.column_types + tuple((t, col, typ) for (t, col), typ in self.column_types.items())
        if declared:
            st = replace(st, changes=tuple(_with_declared_type(ch, declared) for ch in st.changes))
        if src.index_tables:
            st = replace(st, changes=tuple(_with_index_table(ch, src.index_tables) for ch in st.changes))
        effects = []
        for change in st.changes:
            try:
                effects.append(effect_of(change, self.version, self.catalog))
            except Exception as exc:  # the knowledge base must not stop a check
                effects.append(Effect(change, (), WorkClass.UNKNOWN, certainty=Certainty.CONSERVATIVE))
                self.problems.append(
                    _tool_finding(RuleCode.UNANALYSED_STATEMENT, location, f"could not analyse {change.kind}: {exc}",
                                  "Review this statement by hand.", st.sql, src.revision)
                )
        control = next((c for c in st.changes if isinstance(c, TransactionControl)), None)
        if control is None and not self.in_block:
            self.number += 1  # each statement outside a block is its own transaction
            self.held.clear()
        lock_timeout, statement_timeout = self._timeouts()
        info = StatementInfo(
            index=len(self.statements),
            sql=st.sql,
            location=location,
            node_type=st.node_type,
            changes=st.changes,
            effects=tuple(effects),
            transaction=TransactionInfo(self.in_block, self.number, lock_timeout, statement_timeout),
            revision=src.revision,
        )
        if st.changes and all(
            ch.table is not None and ch.table.name == self.config.version_table for ch in st.changes
        ):
            self.bookkeeping.add(info.index)
        created_here = [ch.on for ch in st.changes if isinstance(ch, CreateTable)] + [
            # A relation no other session can see yet (CREATE [TEMP] TABLE ... AS, a new view).
            lk.relation for e in effects for lk in e.locks
            if not lk.blocking and lk.role in (RelationRole.TABLE, RelationRole.VIEW)
            and not isinstance(e.change, CreateTable)
        ]
        self.statements.append(info)
        self.snapshots.append(
            _Snapshot(
                created=(*self.created, *created_here),
                not_valid={k: v[0] for k, v in self.not_valid.items()},
                proven=frozenset(self.proven),
                checked=frozenset(self.checked),
                held=tuple(self.held.values()),
            )
        )
        self.created += created_here
        if control is not None:
            self._transaction(control)
            return
        for change, effect in zip(st.changes, effects, strict=True):
            self._track(change, effect, info)

    def _transaction(self, control: TransactionControl) -> None:
        if control.action is TransactionAction.BEGIN:
            if not self.in_block:
                self.number += 1
                self.held.clear()
            self.in_block = True
            return
        self.in_block = False
        self.local.clear()
        self.held.clear()
        self.number += 1

    def _track(self, change: Change, effect: Effect, info: StatementInfo) -> None:
        if isinstance(change, CreateTable):
            for col in change.columns:
                self.column_types[(change.on.name, col.name)] = col.type
        elif isinstance(change, AddColumn):
            self.column_types[(change.on.name, change.column.name)] = change.column.type
        elif isinstance(change, AlterColumnType):
            self.column_types[(change.on.name, change.column)] = change.new_type
        for lock in effect.locks:
            key = next((k for k in self.held if same_relation(k, lock.relation)), lock.relation)
            current = self.held.get(key)
            if current is None or lock.mode > current.mode:
                self.held[key] = lock
        if isinstance(change, SetSetting):
            self._setting(change.name, change.value, change.local)
        elif isinstance(change, RawStatement):
            for m in _SET_CONFIG.finditer(change.sql):
                self._setting(m.group("name").lower(), m.group("value"), m.group("local").lower() == "true")
        elif isinstance(change, AddConstraint):
            k = change.constraint
            if k.not_valid and k.name:
                self.not_valid[(change.on.name, k.name)] = (info, change)
            elif not k.not_valid:
                self._valid_constraint(change)
        elif isinstance(change, ValidateConstraint):
            added = self.not_valid.pop((change.on.name, change.name), None)
            if added is not None:
                self._valid_constraint(added[1])

    def _valid_constraint(self, change: AddConstraint) -> None:
        k = change.constraint
        if k.kind is ConstraintKind.CHECK:
            self.checked.add(change.on.name)
            column = _not_null_check_column(k.expression)
            if column is not None:
                self.proven.add((change.on.name, column))
        elif k.kind is ConstraintKind.NOT_NULL:
            for column in k.columns:
                self.proven.add((change.on.name, column))

    def _setting(self, name: str, value: str | None, local: bool) -> None:
        if name == "all":
            for timeout in _TIMEOUTS:
                self.session[timeout] = None
                self.local.pop(timeout, None)
            return
        if name not in _TIMEOUTS:
            return
        if local:
            if self.in_block:  # SET LOCAL outside a transaction block has no effect
                self.local[name] = value
        else:
            self.session[name] = value
            self.local.pop(name, None)


_NOT_NULL_CHECK = re.compile(r'^\(*\s*"?(?P<col>[^"()\s]+)"?\s+IS\s+NOT\s+NULL\s*\)*$', re.IGNORECASE)


def _not_null_check_column(expression: str | None) -> str | None:
    """``col`` when a CHECK expression is exactly ``col IS NOT NULL``."""
    if expression is None:
        return None
    m = _NOT_NULL_CHECK.match(expression.strip())
    return m.group("col") if m else None


def _line_col(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def _inner_location(src: SourceStatement, line: int, column: int, sql: str) -> Location:
    base = src.location
    if base.path.endswith(".py") or not base.line:
        return base if base.path.endswith(".py") else Location(base.path, line, column)
    abs_line = base.line + line - 1
    abs_col = base.column + column - 1 if line == 1 and base.column else column
    last = sql.rsplit("\n", 1)
    end_line = abs_line + sql.count("\n")
    end_col = (abs_col + len(sql) - 1) if len(last) == 1 else len(last[1])
    return Location(base.path, abs_line, abs_col, end_line, end_col)


# --- pass 2: rules --------------------------------------------------------------------------------


def _run_rules(
    statements: Sequence[StatementInfo],
    walker: _Walker,
    config: Config,
    version: PgVersion,
    catalog: SchemaLookup | None,
    facts: TableFacts | None,
) -> list[Finding]:
    dispatch = _RuleDispatch.of(config)
    by_txn: dict[int, list[StatementInfo]] = {}
    for st in statements:
        if st.transaction.in_block and st.index not in walker.bookkeeping:
            by_txn.setdefault(st.transaction.number, []).append(st)
    findings: list[Finding] = []
    checked = [st for st in statements if st.index not in walker.bookkeeping]
    all_checked = tuple(checked)
    for position, st in enumerate(checked):
        snap = walker.snapshots[st.index]
        group = by_txn.get(st.transaction.number, []) if st.transaction.in_block else []
        earlier = tuple(s for s in group if s.index < st.index)
        later = tuple(s for s in group if s.index > st.index)
        for i, (change, effect) in enumerate(zip(st.changes, st.effects, strict=True)):
            ctx = RuleContext(
                change=change, effect=effect, change_index=i, statement=st,
                earlier=earlier, later=later, version=version, config=config,
                all_statements=all_checked, position=position,
                catalog=catalog, facts=facts, created_tables=snap.created,
                not_valid_constraints=snap.not_valid, proven_not_null=snap.proven,
                checked_tables=snap.checked, held_locks=snap.held,
            )
            for rule in dispatch.rules_for(type(change)):
                findings += _findings_of(rule, ctx)
    return findings


class _RuleDispatch:
    """The enabled rules of one configuration, by the change kind they look at (each rule's
    ``CHANGES``), in registration order: a rule is called only for the changes it judges."""

    _last: tuple[Config, tuple[Rule, ...], _RuleDispatch] | None = None

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._by_kind: dict[type[Change], tuple[Rule, ...]] = {}

    @classmethod
    def of(cls, config: Config) -> _RuleDispatch:
        """The dispatch for ``config``; the last one is kept (one run lints many revisions)."""
        registered = registered_rules()
        last = cls._last
        if last is not None and last[0] is config and last[1] is registered:
            return last[2]
        dispatch = cls(tuple(rule for rule in registered if config.rule_enabled(rule.code)))
        cls._last = (config, registered, dispatch)
        return dispatch

    def rules_for(self, kind: type[Change]) -> tuple[Rule, ...]:
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = tuple(r for r in self.rules if r.looks_at(kind))
        return found


def _findings_of(rule: Rule, ctx: RuleContext) -> Iterable[Finding]:
    try:
        violations = list(rule.check(ctx))
    except Exception as exc:  # a rule bug must not stop the check
        yield _tool_finding(
            RuleCode.UNANALYSED_STATEMENT, ctx.statement.location, f"rule {rule.code} {rule.name} failed: {exc!r}",
            "Report this as a helios-migrate bug.", ctx.statement.sql, ctx.statement.revision,
        )
        return
    for v in violations:
        finding = _to_finding(rule, v, ctx)
        if finding is not None:
            yield finding


def _to_finding(rule: Rule, v: Violation, ctx: RuleContext) -> Finding | None:
    table = v.table or ctx.change.table
    if rule.kind is RuleKind.LOCKING and (ctx.is_new(table) or ctx.is_small(table)):
        return None
    severity = ctx.config.rules.severity.get(rule.code) or v.severity or rule.severity
    if rule.kind in (RuleKind.LOCKING, RuleKind.TRANSACTION) and ctx.is_hot(table):
        severity = Severity(min(Severity.ERROR, severity + 1))
    hot = rule.kind is not RuleKind.OTHER and ctx.is_hot(table)
    return Finding(
        code=rule.code,
        rule=rule.name,
        severity=severity,
        message=v.message + (f" ({table} is configured hot)" if hot else ""),
        location=ctx.statement.location,
        help=v.help,
        statement=ctx.statement.sql,
        revision=ctx.statement.revision,
    )


def _tool_finding(
    code: str, location: Location, message: str, help_text: str, statement: str, revision: str | None
) -> Finding:
    rule = rule_by_code(code)
    return Finding(code, rule.name, rule.severity, message, location, help_text, statement, revision)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Location, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.location, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --- suppressions ---------------------------------------------------------------------------------


def _apply_suppressions(findings: list[Finding], inputs: LintInput, config: Config) -> list[Finding]:
    known = {rule.code for rule in registered_rules()}
    used: dict[tuple[int, int, bool], set[str]] = {}
    kept: list[Finding] = []
    for f in findings:
        if not config.rule_enabled(f.code):
            continue
        if f.code in (RuleCode.SYNTAX_ERROR, RuleCode.UNANALYSED_STATEMENT) and f.code in config.rules.severity:
            f = replace(f, severity=config.rules.severity[f.code])
        first = f.location.line
        last = max(f.location.end_line, first)
        match = next(
            (
                s for s in inputs.suppressions
                if s.covers(f.code) and (s.file_level or (first and s.applies_to_lines(first, last)))
            ),
            None,
        )
        if match is None:
            kept.append(f)
            continue
        used.setdefault(_key(match), set()).add(f.code)
    if not config.rule_enabled(RuleCode.UNUSED_SUPPRESSION):
        return kept
    rule = rule_by_code(RuleCode.UNUSED_SUPPRESSION)
    severity = config.severity_for(rule.code, rule.severity)
    for s in inputs.suppressions:
        hits = used.get(_key(s), set())
        location = Location(inputs.path, s.line, s.column)
        problems: list[str] = []
        if not s.codes:
            if not hits:
                problems.append(f"'{s.describe()}' suppresses nothing here")
        else:
            for code in sorted(s.codes):
                if code not in known:
                    problems.append(f"'{s.describe()}' names unknown rule code {code}")
                elif code not in hits and config.rule_enabled(code):
                    where = "in this file" if s.file_level else "here"
                    problems.append(f"'{s.describe()}': no {code} finding {where} to suppress")
        for message in problems:
            kept.append(
                Finding(rule.code, rule.name, severity, message, location,
                        "Remove the code from the comment (or the whole comment).", "", None)
            )
    return kept


def _key(s: Suppression) -> tuple[int, int, bool]:
    return (s.line, s.column, s.file_level)


def _with_declared_type(change: Change, declared: tuple[tuple[str, str, str], ...]) -> Change:
    """Fill ``AlterColumnType.old_type`` from a type the revision declared for that column."""
    if not isinstance(change, AlterColumnType) or change.old_type is not None:
        return change
    for table, column, old_type in declared:
        if table == change.on.name and column == change.column:
            return replace(change, old_type=old_type)
    return change


def _with_index_table(change: Change, named: tuple[tuple[str, str], ...]) -> Change:
    """Fill ``DropIndex.on`` from the table the revision named for that index."""
    if not isinstance(change, DropIndex) or change.on is not None:
        return change
    for index, table in named:
        if QualifiedName.parse(index).name == change.index.name:
            return replace(change, on=QualifiedName.parse(table))
    return change
