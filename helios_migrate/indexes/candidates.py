"""Candidate indexes from the parse trees of queries, merged and ranked.

For each query (``SELECT``, ``UPDATE``, ``DELETE``), and each table it reads, the columns an index
could serve: equality comparisons (``=``, ``IN``, ``= ANY``) with a constant or parameter, one range
comparison (``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``, ``LIKE 'prefix%'``), the join keys of the
tables it joins into, and ``ORDER BY``.  A B-tree serves them in that order: the equality columns
first (the most distinct first, from ``pg_stats``), then the range column, else the sort columns.
A candidate an existing valid index already serves is dropped, and one that a longer candidate
on the same table serves (its equality columns first, then the rest in order) is folded into it,
so one index serves every query it can.  Each suggestion's weight is the execution time of the
queries it serves (``calls x mean``): the ranking is a heuristic, not a measurement.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums.parsenodes import A_Expr_Kind, SortByDir
from pglast.enums.primnodes import BoolExprType
from pglast.parser import ParseError

from ..changes import CreateIndex, QualifiedName
from ..planner import index_name
from ..schema_model import Index, Schema, Table
from ..sqltext import quote_ident
from .workload import Query

SMALL_TABLE_ROWS = 10_000
"""Below this estimate a sequential scan is cheap: no index is suggested."""

_RANGE_OPS = {"<", "<=", ">", ">="}
HIDDEN_TEXT = "<insufficient privilege>"
"""The text pg_stat_statements shows for a statement of another role the reader may not see."""


class Role(str, enum.Enum):
    EQUALITY = "equality"
    RANGE = "range"
    JOIN = "join"
    SORT = "sort"


@dataclass
class TableUse:
    """What one query asks of one table."""

    table: Table
    equality: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    sort_usable: bool = True
    """ORDER BY names only this table's columns, all in one direction."""


@dataclass(frozen=True)
class Skipped:
    query: Query
    reason: str


@dataclass(frozen=True)
class Suggestion:
    table: Table
    columns: tuple[str, ...]
    queries: tuple[Query, ...]
    replaces: tuple[Index, ...] = ()
    """Existing non-unique indexes whose columns lead this one: redundant once it exists."""

    @property
    def weight_ms(self) -> float:
        return sum(q.total_ms for q in self.queries)

    @property
    def calls(self) -> int:
        return sum(q.calls for q in self.queries)

    @property
    def name(self) -> str:
        return index_name(self.table.name, list(self.columns))

    def change(self) -> CreateIndex:
        return CreateIndex(on=self.table.name, name=self.name, columns=tuple(quote_ident(c) for c in self.columns))


@dataclass(frozen=True)
class Advice:
    suggestions: tuple[Suggestion, ...]
    served: tuple[tuple[Query, str], ...]
    """Queries an existing index already serves, with its name."""
    skipped: tuple[Skipped, ...]


# --- reading one query ----------------------------------------------------------------------------


class _Scope:
    """The tables a statement reads, by alias and by name."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
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
            return (table, column) if table is not None and table.column(column) is not None else None
        owners = [t for t in self.by_alias.values() if t.column(column) is not None]
        return (owners[0], column) if len(owners) == 1 else None


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


def _op(node: ast.A_Expr) -> str:
    return "".join(n.sval or "" for n in node.name or () if isinstance(n, ast.String))


def _conjuncts(node: object) -> Iterator[object]:
    if isinstance(node, ast.BoolExpr) and node.boolop is BoolExprType.AND_EXPR:
        for arg in node.args or ():
            yield from _conjuncts(arg)
    elif node is not None:
        yield node


def _uses(scope: _Scope, predicate: object, uses: dict[str, TableUse]) -> None:
    for conjunct in _conjuncts(predicate):
        if not isinstance(conjunct, ast.A_Expr):
            continue
        op, kind = _op(conjunct), conjunct.kind
        left, right = scope.column(conjunct.lexpr), scope.column(conjunct.rexpr)
        if kind is A_Expr_Kind.AEXPR_OP and op == "=" and left and right and left[0] is not right[0]:
            for table, column in (left, right):  # a join key: either side may be the inner one
                _use(uses, table).join.append(column)
            continue
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
    elif isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        if stmt.relation is not None:
            scope.add(stmt.relation)
        _from(scope, stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause, uses)
        _uses(scope, stmt.whereClause, uses)
    else:
        return f"a {type(stmt).__name__.removesuffix('Stmt')} statement: no index advice"
    if not scope.by_alias:
        return "reads no table of this database"
    return list(uses.values())


# --- from uses to candidates ------------------------------------------------------------------


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def candidate_columns(use: TableUse, distinct: dict[tuple[str, str], float]) -> tuple[str, ...] | None:
    """The columns of the B-tree that serves ``use``, best first; ``None`` when none would."""
    rows = use.table.row_estimate or 0

    def selectivity(column: str) -> float:
        n = distinct.get((str(use.table.name), column), 0.0)
        return -n * rows if n < 0 else n  # pg_stats: negative is a fraction of the rows

    equality = sorted(_unique(use.equality), key=selectivity, reverse=True)
    rest = [c for c in _unique(use.range) if c not in equality][:1]
    if not rest and use.sort and all(c not in equality for c in use.sort):
        rest = _unique(use.sort)
    columns = [*equality, *rest]
    if columns:
        return tuple(columns)
    join = _unique(use.join)
    return (join[0],) if len(join) == 1 else None


def _serving_index(table: Table, columns: tuple[str, ...], n_equal: int) -> Index | None:
    """A valid, non-partial B-tree index of ``table`` that already serves ``columns``."""
    for ix in table.indexes:
        if not ix.valid or ix.predicate is not None or ix.method != "btree":
            continue
        lead = max(n_equal, 1)
        if ix.leads_with(columns[:lead]) and tuple(ix.elements[lead:len(columns)]) == columns[lead:]:
            return ix
    return None


def _folds_into(short: tuple[str, ...], n_equal: int, long: tuple[str, ...]) -> bool:
    """Does an index on ``long`` serve what ``short`` asks (its equality columns first, in any
    order, then the rest in order)?"""
    if len(short) > len(long):
        return False
    lead = max(n_equal, 1)
    return sorted(long[:lead]) == sorted(short[:lead]) and long[lead:len(short)] == short[lead:]


def advise(queries: Sequence[Query], schema: Schema, distinct: dict[tuple[str, str], float]) -> Advice:
    """The suggested indexes for ``queries`` on ``schema``, heaviest first."""
    wanted: dict[tuple[str, tuple[str, ...]], tuple[Table, int, list[Query]]] = {}
    served: list[tuple[Query, str]] = []
    skipped: list[Skipped] = []
    for query in queries:
        uses = table_uses(query, schema)
        if isinstance(uses, str):
            skipped.append(Skipped(query, uses))
            continue
        found = False
        for use in uses:
            columns = candidate_columns(use, distinct)
            if columns is None:
                continue
            found = True
            if use.table.row_estimate is None:
                skipped.append(Skipped(query, f"{use.table.name} has no row estimate: ANALYZE it, then ask again"))
                continue
            if use.table.row_estimate < SMALL_TABLE_ROWS:
                skipped.append(Skipped(
                    query, f"{use.table.name} is small (~{use.table.row_estimate} rows): a scan is cheap"
                ))
                continue
            n_equal = len(_unique(use.equality))
            existing = _serving_index(use.table, columns, n_equal)
            if existing is not None:
                served.append((query, existing.name or ", ".join(existing.elements)))
                continue
            key = (str(use.table.name), columns)
            wanted.setdefault(key, (use.table, n_equal, []))[2].append(query)
        if not found:
            skipped.append(Skipped(query, "no column an index could serve (no comparison of a column "
                                          "with a value, join key or ORDER BY of one table)"))
    # Fold each candidate into a longer one on the same table that serves it.
    keys = sorted(wanted, key=lambda k: -len(k[1]))
    merged: dict[tuple[str, tuple[str, ...]], list[Query]] = {}
    for key in keys:
        table_key, columns = key
        _table, n_equal, qs = wanted[key]
        host = next((m for m in merged if m[0] == table_key and _folds_into(columns, n_equal, m[1])), None)
        merged.setdefault(host or key, []).extend(qs)
    suggestions = []
    for (_, columns), qs in merged.items():
        table = wanted[(_, columns)][0]
        replaces = tuple(
            ix for ix in table.indexes
            if ix.valid and not ix.unique and ix.constraint is None and ix.predicate is None and ix.method == "btree"
            and len(ix.elements) < len(columns) and tuple(ix.elements) == columns[:len(ix.elements)]
        )
        suggestions.append(Suggestion(table, columns, tuple(_unique_queries(qs)), replaces))
    suggestions.sort(key=lambda s: (-s.weight_ms, -s.calls, str(s.table.name), s.columns))
    return Advice(tuple(suggestions), tuple(served), tuple(skipped))


def _unique_queries(queries: Sequence[Query]) -> list[Query]:
    seen: dict[str, Query] = {}
    for q in queries:
        seen.setdefault(q.source + q.text, q)
    return list(seen.values())
