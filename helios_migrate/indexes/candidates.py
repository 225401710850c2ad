"""Candidate indexes from the parse trees of queries, merged and ranked.

For each query (``SELECT``, ``UPDATE``, ``DELETE``), and each table it reads, the columns an index
could serve: equality comparisons (``=``, ``IN``, ``= ANY``) with a constant or parameter -- of a
column, or of ``lower(column)`` / ``upper(column)`` (an expression index) --, one range comparison
(``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``, ``LIKE 'prefix%'``), the join keys of the tables it
joins into, ``ORDER BY`` and ``GROUP BY``.  A B-tree serves them in that order: the equality
columns first (the most distinct first, from ``pg_stats``), then the range column, else the sort
columns, else (after equality columns) the ``GROUP BY`` columns, so the groups come in index order.

Two refinements, each from the query and the column statistics:

- **partial**: a predicate that holds a constant -- ``col IS [NOT] NULL``, a boolean column, ``NOT
  col``, ``col = 'literal'`` (a literal survives only in a ``--queries`` file: ``pg_stat_statements``
  turns it into ``$n``) -- and that ``pg_stats`` says keeps at most :data:`PARTIAL_MAX_FRACTION`
  of the rows becomes the index's ``WHERE``, and its column leaves the key;
- **covering** (``INCLUDE``): when the queries of a suggestion read only a few narrow columns
  beyond its key and fetch many rows per call (no ``LIMIT``), those columns are included, so an
  index-only scan skips the heap.

A candidate an existing valid index already serves is dropped; one that a longer candidate on the
same table (and predicate) serves is folded into it; a partial candidate is folded into a full one
that serves its queries with the predicate's column in its key, so a partial and a full index are
never both suggested for the same queries.  Each suggestion's weight is the execution time of the
queries it serves (``calls x mean``): the ranking is a heuristic, not a measurement.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums.parsenodes import A_Expr_Kind, SortByDir
from pglast.enums.primnodes import BoolExprType, NullTestType, SubLinkType
from pglast.parser import ParseError

from ..changes import CreateIndex, QualifiedName
from ..normalize import NormalizeError, normalize_expr
from ..planner import index_name
from ..schema_model import Index, Schema, Table
from ..sqltext import quote_ident, quote_literal
from .workload import Query

SMALL_TABLE_ROWS = 10_000
"""Below this estimate a sequential scan is cheap: no index is suggested."""

PARTIAL_MAX_FRACTION = 0.2
"""A constant predicate keeping at most this share of the rows makes the index partial."""

STATE_MAX_DISTINCT = 50
"""``col = 'literal'`` makes a partial index only on a column of few values (a status, a kind),
and only for one of its common values."""

INCLUDE_MIN_ROWS = 50
GROUP_MIN_ROWS = 50
FEW_ROWS = 50
"""An existing index leaving fewer rows per call than this serves a query whatever else it asks."""
"""GROUP BY columns join the key only when the equality columns leave this many rows per call
(estimated): fewer are grouped in memory at no cost."""
"""A query fetching fewer rows per call (estimated) gains little from an index-only scan."""

INCLUDE_MAX_COLUMNS = 3
INCLUDE_MAX_BYTES = 32
"""An INCLUDE list longer or wider than this makes the index too big for what it saves."""

RANGE_SELECTIVITY = 0.005
"""PostgreSQL's own default share of rows for a range comparison of unknown selectivity."""

_RANGE_OPS = {"<", "<=", ">", ">="}
_CASE_FUNCTIONS = {"lower", "upper"}
"""Immutable functions of one text column an expression index is suggested for."""
HIDDEN_TEXT = "<insufficient privilege>"
"""The text pg_stat_statements shows for a statement of another role the reader may not see."""


class Role(str, enum.Enum):
    EQUALITY = "equality"
    RANGE = "range"
    JOIN = "join"
    SORT = "sort"
    GROUP = "group"


@dataclass(frozen=True)
class ColumnStats:
    """What ``pg_stats`` says of one column."""

    n_distinct: float = 0.0
    """Distinct values; negative: a fraction of the rows (as pg_stats gives it)."""
    avg_width: int | None = None
    null_frac: float | None = None
    common: tuple[tuple[str, float], ...] = ()
    """Most common values (as text) and their frequencies."""


Stats = Mapping[tuple[str, str], ColumnStats]
"""Column statistics by (``str(table name)``, column)."""


class PredicateKind(str, enum.Enum):
    IS_NULL = "is null"
    NOT_NULL = "is not null"
    TRUE = "true"
    FALSE = "false"
    LITERAL = "literal"


@dataclass(frozen=True)
class Predicate:
    """A conjunct that holds a constant: ``col IS NULL``, ``NOT col``, ``col = 'x'``..."""

    column: str
    kind: PredicateKind
    value: str | None = None

    @property
    def text(self) -> str:
        col = quote_ident(self.column)
        return {
            PredicateKind.IS_NULL: f"{col} IS NULL",
            PredicateKind.NOT_NULL: f"{col} IS NOT NULL",
            PredicateKind.TRUE: col,
            PredicateKind.FALSE: f"NOT {col}",
        }.get(self.kind) or f"{col} = {quote_literal(self.value or '')}"


@dataclass
class TableUse:
    """What one query asks of one table."""

    table: Table
    equality: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    sort_usable: bool = True
    """ORDER BY names only this table's columns, all in one direction."""
    constants: list[Predicate] = field(default_factory=list)
    """Conjuncts holding a constant: what a partial index's WHERE could be."""
    reads: set[str] | None = field(default_factory=set)
    """Every column of this table the statement names; ``None``: all of them (``*``) or unknown."""
    is_select: bool = False
    limited: bool = False
    """The statement has a LIMIT: it fetches few rows whatever the index."""


@dataclass(frozen=True)
class Skipped:
    query: Query
    reason: str


@dataclass(frozen=True)
class Suggestion:
    table: Table
    columns: tuple[str, ...]
    """Key elements: column names, or an expression (``lower(email)``)."""
    queries: tuple[Query, ...]
    replaces: tuple[Index, ...] = ()
    """Existing non-unique indexes whose columns lead this one: redundant once it exists."""
    include: tuple[str, ...] = ()
    """Columns carried in the index (``INCLUDE``) for index-only scans."""
    where: str | None = None
    """The partial index's predicate."""
    fraction: float | None = None
    """The share of the table's rows a partial index holds (from pg_stats), when known."""

    @property
    def weight_ms(self) -> float:
        return sum(q.total_ms for q in self.queries)

    @property
    def calls(self) -> int:
        return sum(q.calls for q in self.queries)

    @property
    def elements(self) -> tuple[str, ...]:
        """The key as SQL text: a column quoted, an expression as it is."""
        return tuple(quote_ident(c) if self.table.column(c) is not None else c for c in self.columns)

    @property
    def name(self) -> str:
        parts = [*self.columns, *self.include]
        if self.where is not None:
            parts += ["where", *_identifiers(self.where)]
        return index_name(self.table.name, parts)

    def change(self) -> CreateIndex:
        return CreateIndex(
            on=self.table.name, name=self.name, columns=self.elements, include=self.include, where=self.where,
        )


@dataclass(frozen=True)
class Advice:
    suggestions: tuple[Suggestion, ...]
    served: tuple[tuple[Query, str], ...]
    """Queries an existing index already serves, with its name."""
    skipped: tuple[Skipped, ...]


def _identifiers(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
    return [w.lower() for w in words if w.upper() not in {"IS", "NOT", "NULL", "AND"}]


def element_key(text: str) -> str:
    """Canonical text of an index element or predicate, casts left out, for comparing ours with
    the catalog's (``lower((email)::text)`` and ``lower(email)`` are the same element)."""
    try:
        text = normalize_expr(text)
    except NormalizeError:
        return text
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"CAST\(([^()]*?) AS [^()]*?\)", r"\1", text)
    return text


# --- reading one query ----------------------------------------------------------------------------


class _Scope:
    """The tables a statement reads, by alias and by name; a subquery's scope sees its own tables
    first, then the enclosing query's (a correlated name)."""

    def __init__(self, schema: Schema, parent: _Scope | None = None) -> None:
        self.schema = schema
        self.parent = parent
        self.by_alias: dict[str, Table] = {}

    def add(self, rv: ast.RangeVar) -> Table | None:
        table = self.schema.table(QualifiedName(rv.relname or "", rv.schemaname))
        if table is not None:
            alias = rv.alias.aliasname if rv.alias is not None else rv.relname
            self.by_alias[alias or table.name.name] = table
        return table

    def column(self, node: object) -> tuple[Table, str] | None:
        if not isinstance(node, ast.ColumnRef):
            return None
        fields = node.fields or ()
        names = [f.sval for f in fields if isinstance(f, ast.String) and f.sval is not None]
        if len(names) != len(fields) or not names:
            return None  # a * or something else
        column = names[-1]
        if len(names) >= 2:
            table = self.by_alias.get(names[-2])
            if table is None:
                return self.parent.column(node) if self.parent is not None else None
            return (table, column) if table.column(column) is not None else None
        owners = [t for t in self.by_alias.values() if t.column(column) is not None]
        if not owners and self.parent is not None:
            return self.parent.column(node)
        return (owners[0], column) if len(owners) == 1 else None

    def element(self, node: object) -> tuple[Table, str] | None:
        """A column, or ``lower(column)`` / ``upper(column)``: what an index key can hold."""
        if isinstance(node, ast.FuncCall) and len(node.args or ()) == 1 and not node.agg_star:
            names = [n.sval for n in node.funcname or () if isinstance(n, ast.String)]
            if names and names[-1] in _CASE_FUNCTIONS and names[:-1] in ([], ["pg_catalog"]):
                col = self.column((node.args or (None,))[0])
                return (col[0], f"{names[-1]}({quote_ident(col[1])})") if col is not None else None
            return None
        return self.column(node)


def _is_value(node: object) -> bool:
    """A constant, a parameter, or an expression of them (no column)."""
    if isinstance(node, (ast.A_Const, ast.ParamRef)):
        return True
    if isinstance(node, ast.TypeCast):
        return _is_value(node.arg)
    if isinstance(node, ast.FuncCall):
        return all(_is_value(a) for a in node.args or ())
    if isinstance(node, ast.A_Expr) and node.kind is A_Expr_Kind.AEXPR_OP:
        return all(_is_value(x) for x in (node.lexpr, node.rexpr) if x is not None)
    return isinstance(node, ast.SQLValueFunction)


def _literal(node: object) -> str | None:
    """The text of a literal constant (``'x'``, ``5``, ``'x'::text``); ``None`` for anything else."""
    if isinstance(node, ast.TypeCast):
        return _literal(node.arg)
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        if isinstance(val, ast.String):
            return val.sval
        if isinstance(val, ast.Integer):
            return str(val.ival)
    return None


def _op(node: ast.A_Expr) -> str:
    return "".join(n.sval or "" for n in node.name or () if isinstance(n, ast.String))


def _conjuncts(node: object) -> Iterator[object]:
    if isinstance(node, ast.BoolExpr) and node.boolop is BoolExprType.AND_EXPR:
        for arg in node.args or ():
            yield from _conjuncts(arg)
    elif node is not None:
        yield node


def _boolean(scope: _Scope, node: object) -> tuple[Table, str] | None:
    col = scope.column(node)
    if col is None:
        return None
    column = col[0].column(col[1])
    return col if column is not None and column.type in ("boolean", "bool") else None


def _constant(scope: _Scope, conjunct: object, uses: dict[str, TableUse]) -> bool:
    """Record ``conjunct`` when it holds a constant with no comparison (``IS NULL``, a boolean)."""
    if isinstance(conjunct, ast.NullTest):
        col = scope.column(conjunct.arg)
        if col is None:
            return False
        kind = PredicateKind.IS_NULL if conjunct.nulltesttype is NullTestType.IS_NULL else PredicateKind.NOT_NULL
        _use(uses, col[0]).constants.append(Predicate(col[1], kind))
        return True
    negated = isinstance(conjunct, ast.BoolExpr) and conjunct.boolop is BoolExprType.NOT_EXPR
    target = (conjunct.args or (None,))[0] if negated and isinstance(conjunct, ast.BoolExpr) else conjunct
    col = _boolean(scope, target)
    if col is None:
        return False
    _use(uses, col[0]).constants.append(Predicate(col[1], PredicateKind.FALSE if negated else PredicateKind.TRUE))
    return True


def _subquery(scope: _Scope, conjunct: object, uses: dict[str, TableUse]) -> bool:
    """``col IN (SELECT c ...)``, ``[NOT] EXISTS (SELECT ...)``: a semi- (anti-) join.  The
    subquery's tables are read as joined ones: its own predicates, its correlation with the outer
    tables as join keys, and an IN's outer column and the column it selects as join keys."""
    if isinstance(conjunct, ast.BoolExpr) and conjunct.boolop is BoolExprType.NOT_EXPR:
        conjunct = (conjunct.args or (None,))[0]
    if not isinstance(conjunct, ast.SubLink) or conjunct.subLinkType not in (
        SubLinkType.EXISTS_SUBLINK, SubLinkType.ANY_SUBLINK
    ):
        return False
    sub = conjunct.subselect
    if not isinstance(sub, ast.SelectStmt) or (sub.op is not None and sub.op.name != "SETOP_NONE"):
        return False
    inner = _Scope(scope.schema, scope)
    _from(inner, sub.fromClause, uses)
    _uses(inner, sub.whereClause, uses)
    if conjunct.subLinkType is SubLinkType.ANY_SUBLINK:
        outer = scope.column(conjunct.testexpr)
        targets = sub.targetList or ()
        selected = inner.column(targets[0].val) if len(targets) == 1 else None
        for side in (outer, selected):
            if side is not None:
                _use(uses, side[0]).join.append(side[1])
    return True


_OR_ARM = "|or|"
"""In the key of a use that is one arm of an OR (``table|or|n``): each arm needs its own index."""


def _alternatives(scope: _Scope, conjunct: object, uses: dict[str, TableUse]) -> bool:
    """``a = $1 OR b = $2`` on one table: a bitmap OR of one index per arm; each arm is recorded
    as a use of its own."""
    if not isinstance(conjunct, ast.BoolExpr) or conjunct.boolop is not BoolExprType.OR_EXPR:
        return False
    arms = []
    for arm in conjunct.args or ():
        found: dict[str, TableUse] = {}
        _uses(scope, arm, found)
        if len(found) != 1:
            return False
        (use,) = found.values()
        if not use.equality and not use.range:
            return False
        arms.append(use)
    if len({str(a.table.name) for a in arms}) != 1:
        return False
    for arm_use in arms:
        uses[f"{arm_use.table.name}{_OR_ARM}{len(uses)}"] = arm_use
    return True


def _uses(scope: _Scope, predicate: object, uses: dict[str, TableUse]) -> None:
    for conjunct in _conjuncts(predicate):
        if _constant(scope, conjunct, uses) or _subquery(scope, conjunct, uses) or _alternatives(scope, conjunct, uses):
            continue
        if not isinstance(conjunct, ast.A_Expr):
            continue
        op, kind = _op(conjunct), conjunct.kind
        left, right = scope.column(conjunct.lexpr), scope.column(conjunct.rexpr)
        if kind is A_Expr_Kind.AEXPR_OP and op == "=" and left and right and left[0] is not right[0]:
            for table, column in (left, right):  # a join key: either side may be the inner one
                _use(uses, table).join.append(column)
            continue
        if left is None and right is None:
            left = scope.element(conjunct.lexpr)  # lower(col) = $1: an expression index
            if left is None and kind is A_Expr_Kind.AEXPR_OP:
                right = scope.element(conjunct.rexpr)
        col, other = (left, conjunct.rexpr) if left else (right, conjunct.lexpr)
        if col is None:
            continue
        table, column = col
        values = conjunct.rexpr if isinstance(conjunct.rexpr, tuple | list) else ()
        equality = (
            (kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY) and op == "=" and _is_value(other))
            or (kind is A_Expr_Kind.AEXPR_IN and left is not None and bool(values) and all(map(_is_value, values)))
        )
        ranged = (
            (kind is A_Expr_Kind.AEXPR_OP and op in _RANGE_OPS and _is_value(other))
            or (kind is A_Expr_Kind.AEXPR_BETWEEN and left is not None)
            or (kind is A_Expr_Kind.AEXPR_LIKE and op == "~~" and left is not None and _prefix_pattern(conjunct.rexpr))
        )
        if equality:
            _use(uses, table).equality.append(column)
            literal = _literal(other) if kind is A_Expr_Kind.AEXPR_OP and table.column(column) else None
            if literal is not None:
                _use(uses, table).constants.append(Predicate(column, PredicateKind.LITERAL, literal))
        elif ranged:
            _use(uses, table).range.append(column)


def _prefix_pattern(node: object) -> bool:
    """``'abc%'``: a B-tree serves it (with the C collation or text_pattern_ops) -- a parameter is
    not known to be a prefix, so it is not counted."""
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        value = node.val.sval or ""
        return bool(value) and not value.startswith(("%", "_")) and value.endswith("%")
    return False


def _use(uses: dict[str, TableUse], table: Table) -> TableUse:
    key = str(table.name)
    if key not in uses:
        uses[key] = TableUse(table)
    return uses[key]


def _from(scope: _Scope, items: Sequence[object] | None, uses: dict[str, TableUse]) -> None:
    for item in items or ():
        if isinstance(item, ast.RangeVar):
            scope.add(item)
        elif isinstance(item, ast.JoinExpr):
            _from(scope, [item.larg, item.rarg], uses)
            if item.quals is not None:
                _uses(scope, item.quals, uses)


def _sort(scope: _Scope, clause: Sequence[ast.SortBy] | None, uses: dict[str, TableUse]) -> None:
    columns = [(scope.column(s.node), s.sortby_dir) for s in clause or ()]
    if not columns:
        return
    tables = {id(c[0][0]) for c in columns if c[0] is not None}
    directions = {SortByDir.SORTBY_DESC if d is SortByDir.SORTBY_DESC else SortByDir.SORTBY_ASC for _, d in columns}
    if any(c is None for c, _ in columns) or len(tables) != 1 or len(directions) != 1:
        return  # an index serves an ORDER BY of one table's columns in one direction only
    first = columns[0][0]
    assert first is not None
    use = _use(uses, first[0])
    use.sort = [c[1] for c, _ in columns if c is not None]


def _group(scope: _Scope, clause: Sequence[object] | None, uses: dict[str, TableUse]) -> None:
    columns = [scope.column(node) for node in clause or ()]
    if not columns or any(c is None for c in columns) or len({id(c[0]) for c in columns if c}) != 1:
        return  # an index gives the groups in order only for plain columns of one table
    first = columns[0]
    assert first is not None
    _use(uses, first[0]).group = [c[1] for c in columns if c is not None]


def _children(node: object) -> Iterator[object]:
    if isinstance(node, (list, tuple)):
        yield from node
    elif isinstance(node, ast.Node):
        for name in getattr(type(node), "__slots__", ()):
            yield getattr(node, name, None)


def _reads(scope: _Scope, stmt: object, uses: dict[str, TableUse]) -> None:
    """The columns of each table the statement names anywhere (``None`` after a ``*`` or a
    subquery, whose names this scope cannot resolve)."""
    reads: dict[str, set[str] | None] = {str(t.name): set() for t in scope.by_alias.values()}
    stack = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.SubLink, ast.RangeSubselect, ast.CommonTableExpr)) or (
            isinstance(node, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in node.fields or ())
        ):
            reads = dict.fromkeys(reads)
            break
        if isinstance(node, ast.ColumnRef):
            col = scope.column(node)
            if col is None:
                reads = dict.fromkeys(reads)  # a name this scope cannot tell: assume everything
                break
            found = reads.get(str(col[0].name))
            if found is not None:
                found.add(col[1])
            continue
        stack.extend(_children(node))
    for key, columns in reads.items():
        if key in uses:
            uses[key].reads = columns


def table_uses(query: Query, schema: Schema) -> list[TableUse] | str:
    """What ``query`` asks of each table, or why it cannot be read."""
    if query.text.strip() == HIDDEN_TEXT:
        return ("hidden: pg_stat_statements shows another role's statements only to a superuser or a "
                "member of pg_read_all_stats")
    try:
        statements = parse_sql(query.text)
    except ParseError as exc:
        return f"not parsed: {exc}"
    if len(statements) != 1:
        return "not one statement"
    stmt = statements[0].stmt
    scope = _Scope(schema)
    uses: dict[str, TableUse] = {}
    if isinstance(stmt, ast.SelectStmt):
        if stmt.op is not None and stmt.op.name != "SETOP_NONE":
            return "a UNION/INTERSECT/EXCEPT: read its parts as queries of their own"
        _from(scope, stmt.fromClause, uses)
        _uses(scope, stmt.whereClause, uses)
        _sort(scope, stmt.sortClause, uses)
        _group(scope, stmt.groupClause, uses)
        _reads(scope, stmt, uses)
        for use in uses.values():
            use.is_select = True
            use.limited = stmt.limitCount is not None
    elif isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        if stmt.relation is not None:
            scope.add(stmt.relation)
        _from(scope, stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause, uses)
        _uses(scope, stmt.whereClause, uses)
    else:
        return f"a {type(stmt).__name__.removesuffix('Stmt')} statement: no index advice"
    if not scope.by_alias:
        return "reads no table of this database"
    # The arms of an OR matter only where nothing else narrows the table down.
    return [use for key, use in uses.items() if _OR_ARM not in key
            or not (main := uses.get(key.split(_OR_ARM)[0])) or not (main.equality or main.range)]


# --- from uses to candidates ------------------------------------------------------------------


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _distinct(use: TableUse, stats: Stats, column: str) -> float:
    rows = use.table.row_estimate or 0
    inner = re.fullmatch(r'\w+\("?(.+?)"?\)', column)  # lower(email): about as distinct as email
    key = (str(use.table.name), column)
    if key not in stats and inner is not None:
        key = (str(use.table.name), inner.group(1))
    n = stats.get(key, ColumnStats()).n_distinct
    return -n * rows if n < 0 else n  # pg_stats: negative is a fraction of the rows


def fraction(table: Table, predicate: Predicate, stats: Stats) -> float | None:
    """The share of ``table``'s rows ``predicate`` keeps, from pg_stats; ``None`` when unknown."""
    st = stats.get((str(table.name), predicate.column))
    if st is None:
        return None
    if predicate.kind is PredicateKind.LITERAL and not 0 < st.n_distinct <= STATE_MAX_DISTINCT:
        return None  # a literal of a many-valued column is a sample value, not a state
    null = st.null_frac or 0.0
    if predicate.kind is PredicateKind.IS_NULL:
        return null
    if predicate.kind is PredicateKind.NOT_NULL:
        return 1 - null
    common = dict(st.common)
    wanted = {PredicateKind.TRUE: ("t", "true"), PredicateKind.FALSE: ("f", "false")}.get(
        predicate.kind, (predicate.value or "",)
    )
    for value in wanted:
        if value in common:
            return common[value]
    if predicate.kind is PredicateKind.LITERAL:
        return None  # not a common value: more likely a sample value pasted in than a fixed state
    rows = table.row_estimate or 0
    distinct = -st.n_distinct * rows if st.n_distinct < 0 else st.n_distinct
    if distinct <= len(common):
        return 0.0 if common else None  # every value is a common one, and this is none of them
    return max(0.0, 1 - sum(common.values()) - null) / (distinct - len(common))


@dataclass(frozen=True)
class Candidate:
    """The index one query's use of one table asks for."""

    columns: tuple[str, ...]
    n_equal: int
    where: str | None = None
    predicate_columns: tuple[str, ...] = ()
    fraction: float | None = None
    join: bool = False
    """A join key alone: each call (each outer row) reads the rows of one key value."""


def candidate(use: TableUse, stats: Stats) -> Candidate | None:
    """The index that serves ``use``, best first; ``None`` when none would."""
    partial = []
    for predicate in use.constants:
        share = fraction(use.table, predicate, stats)
        if share is not None and share <= PARTIAL_MAX_FRACTION and predicate not in partial:
            partial.append(predicate)
    held = {p.column for p in partial}
    equality = sorted((c for c in _unique(use.equality) if c not in held),
                      key=lambda c: _distinct(use, stats, c), reverse=True)
    rest = [c for c in _unique(use.range) if c not in equality and c not in held][:1]
    if not rest and use.sort and all(c not in equality for c in use.sort):
        rest = _unique(use.sort)
    if not rest and equality and use.group and not use.range and _rows_after(use, equality, stats) >= GROUP_MIN_ROWS:
        rest = [c for c in _unique(use.group) if c not in equality and c not in held]
    columns = [*equality, *rest]
    if not columns and partial:
        columns = _unique([p.column for p in partial])  # the predicate's own column as the key
    if columns:
        if not partial:
            return Candidate(tuple(columns), len(equality))
        where = " AND ".join(sorted(p.text for p in partial))
        shares = [fraction(use.table, p, stats) or 0.0 for p in partial]
        return Candidate(tuple(columns), len(equality), where, tuple(sorted(held)), min(shares))
    join = _unique(use.join)
    return Candidate((join[0],), 0, join=True) if len(join) == 1 else None


def _rows_after(use: TableUse, equality: Sequence[str], stats: Stats) -> float:
    rows = float(use.table.row_estimate or 0)
    for column in equality:
        rows /= max(_distinct(use, stats, column), 1.0)
    return rows


def candidate_columns(use: TableUse, stats: Stats) -> tuple[str, ...] | None:
    """The key columns of the B-tree that serves ``use`` (see :func:`candidate`)."""
    found = candidate(use, stats)
    return found.columns if found is not None else None


def _leads(elements: Sequence[str], columns: Sequence[str], n_equal: int) -> bool:
    """Do index elements ``elements`` serve ``columns`` (their first ``n_equal`` in any order, then
    the rest in order)?"""
    keys = [element_key(e) for e in elements]
    wanted = [element_key(c) for c in columns]
    lead = max(n_equal, 1)
    return (len(keys) >= len(wanted) and sorted(keys[:lead]) == sorted(wanted[:lead])
            and keys[lead:len(wanted)] == wanted[lead:])


def _serving_index(table: Table, found: Candidate) -> Index | None:
    """A valid B-tree index of ``table`` that already serves ``found``: one with the same
    predicate and key, or a full one whose key holds the predicate's columns first."""
    for ix in table.indexes:
        if not ix.valid or ix.method != "btree":
            continue
        if ix.predicate is None:
            if _leads(ix.elements, found.columns, found.n_equal) and (found.where is None or found.n_equal):
                return ix
            full = (*found.predicate_columns, *found.columns)
            if found.where is not None and _leads(ix.elements, full, found.n_equal + len(found.predicate_columns)):
                return ix
        elif (found.where is not None and element_key(ix.predicate) == element_key(found.where)
              and _leads(ix.elements, found.columns, found.n_equal)):
            return ix
    return None


def _narrowing_index(use: TableUse, found: Candidate, stats: Stats) -> Index | None:
    """A valid B-tree index (no predicate) whose leading columns are equality columns of ``found``
    and leave fewer than :data:`FEW_ROWS` rows per call (a unique one: one row): the rest of the
    predicate, the sort or the grouping is then done on those few rows, and a longer index saves
    next to nothing."""
    equality = {element_key(c) for c in found.columns[:found.n_equal]} | set(found.predicate_columns)
    for ix in use.table.indexes:
        if not ix.valid or ix.method != "btree" or ix.predicate is not None:
            continue
        lead = []
        for element in ix.elements:
            if element_key(element) not in equality:
                break
            lead.append(element)
        if not lead:
            continue
        if (ix.unique or ix.primary) and len(lead) == len(ix.elements):
            return ix
        if _rows_after(use, lead, stats) < FEW_ROWS:
            return ix
    return None


def _folds_into(short: tuple[str, ...], n_equal: int, long: tuple[str, ...]) -> bool:
    """Does an index on ``long`` serve what ``short`` asks (its equality columns first, in any
    order, then the rest in order)?"""
    if len(short) > len(long):
        return False
    lead = max(n_equal, 1)
    return sorted(long[:lead]) == sorted(short[:lead]) and long[lead:len(short)] == short[lead:]


def _rows_per_call(use: TableUse, found: Candidate, stats: Stats) -> float:
    rows = float(use.table.row_estimate or 0) * (found.fraction if found.where is not None and found.fraction else 1.0)
    for column in found.columns[:max(found.n_equal, int(found.join))]:
        rows /= max(_distinct(use, stats, column), 1.0)
    if use.range:
        rows *= RANGE_SELECTIVITY
    return rows


def _include(table: Table, columns: tuple[str, ...], items: Sequence[tuple[TableUse, Candidate]],
             stats: Stats) -> tuple[str, ...]:
    """The columns to carry so the suggestion's row-heavy SELECTs run as index-only scans."""
    extras: set[str] = set()
    for use, found in items:
        if not use.is_select or use.reads is None or use.limited:
            continue
        if _rows_per_call(use, found, stats) < INCLUDE_MIN_ROWS:
            continue
        extras |= use.reads - set(columns) - set(found.predicate_columns)
    if not extras or len(extras) > INCLUDE_MAX_COLUMNS:
        return ()
    widths = [stats.get((str(table.name), c), ColumnStats()).avg_width for c in extras]
    if any(w is None for w in widths) or sum(w or 0 for w in widths) > INCLUDE_MAX_BYTES:
        return ()
    return tuple(sorted(extras))


_Key = tuple[str, tuple[str, ...], str | None]


def advise(queries: Sequence[Query], schema: Schema, stats: Stats) -> Advice:
    """The suggested indexes for ``queries`` on ``schema``, heaviest first."""
    wanted: dict[_Key, tuple[Table, Candidate, list[tuple[Query, TableUse]]]] = {}
    served: list[tuple[Query, str]] = []
    skipped: list[Skipped] = []
    for query in queries:
        uses = table_uses(query, schema)
        if isinstance(uses, str):
            skipped.append(Skipped(query, uses))
            continue
        found_any = False
        for use in uses:
            found = candidate(use, stats)
            if found is None:
                continue
            found_any = True
            if use.table.row_estimate is None:
                skipped.append(Skipped(query, f"{use.table.name} has no row estimate: ANALYZE it, then ask again"))
                continue
            if use.table.row_estimate < SMALL_TABLE_ROWS:
                skipped.append(Skipped(
                    query, f"{use.table.name} is small (~{use.table.row_estimate} rows): a scan is cheap"
                ))
                continue
            existing = _serving_index(use.table, found) or _narrowing_index(use, found, stats)
            if existing is not None:
                served.append((query, existing.name or ", ".join(existing.elements)))
                continue
            key = (str(use.table.name), found.columns, found.where)
            wanted.setdefault(key, (use.table, found, []))[2].append((query, use))
        if not found_any:
            skipped.append(Skipped(query, "no column an index could serve (no comparison of a column "
                                          "with a value, join key, ORDER BY or GROUP BY of one table)"))
    # Fold each candidate into a longer one on the same table and predicate that serves it; then
    # each partial one into a full one whose key serves its queries.
    keys = sorted(wanted, key=lambda k: (k[2] is not None, -len(k[1])))
    merged: dict[_Key, list[_Key]] = {}
    for key in keys:
        table_key, columns, where = key
        found = wanted[key][1]
        host = next((m for m in merged if m[0] == table_key and m[2] == where
                     and _folds_into(columns, found.n_equal, m[1])), None)
        if host is None and where is not None:
            full = (*found.predicate_columns, *columns)
            host = next((m for m in merged if m[0] == table_key and m[2] is None and (
                _folds_into(full, found.n_equal + len(found.predicate_columns), m[1])
                or (found.n_equal > 0 and _folds_into(columns, found.n_equal, m[1]))
            )), None)
        merged.setdefault(host or key, []).append(key)
    suggestions = []
    for host, members in merged.items():
        table, found, _ = wanted[host]
        items = [(q, use, wanted[m][1]) for m in members for q, use in wanted[m][2]]
        columns = host[1]
        include = _include(table, columns, [(use, f) for _, use, f in items], stats)
        replaces = () if host[2] is not None else tuple(
            ix for ix in table.indexes
            if ix.valid and not ix.unique and ix.constraint is None and ix.predicate is None and ix.method == "btree"
            and len(ix.elements) < len(columns)
            and [element_key(e) for e in ix.elements] == [element_key(c) for c in columns[:len(ix.elements)]]
        )
        suggestions.append(Suggestion(
            table, columns, tuple(_unique_queries([q for q, _, _ in items])), replaces, include, host[2],
            found.fraction,
        ))
    suggestions.sort(key=lambda s: (-s.weight_ms, -s.calls, str(s.table.name), s.columns))
    return Advice(tuple(suggestions), tuple(served), tuple(skipped))


def _unique_queries(queries: Sequence[Query]) -> list[Query]:
    seen: dict[str, Query] = {}
    for q in queries:
        seen.setdefault(q.source + q.text, q)
    return list(seen.values())
