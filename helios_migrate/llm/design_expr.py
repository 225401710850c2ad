"""CHECK, index and partial-index expressions of a schema description, judged on pglast's tree.

An expression is accepted only when every node of its parse tree is one this module knows to be
harmless inside a table definition: references to columns of the same table, constants,
operators, boolean and NULL tests, ``IN`` lists, ``CASE``, casts to the description's types and
a short list of immutable built-in functions.  Subqueries, other functions (``pg_read_file``,
``now()``...), qualified or system columns, parameters and everything else are rejected with the
reason.  What is used afterwards is the expression re-deparsed from the accepted tree, never the
text that was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind
from pglast.parser import ParseError
from pglast.stream import RawStream

IMMUTABLE_FUNCTIONS = frozenset({
    "lower", "upper", "length", "char_length", "character_length", "octet_length", "abs",
    "btrim", "ltrim", "rtrim", "trim", "round", "trunc", "floor", "ceil", "ceiling", "sign", "mod",
    "left", "right", "substr", "substring", "replace", "lpad", "rpad", "strpos", "array_length",
    "cardinality", "jsonb_typeof", "json_typeof",
})
"""Functions an expression may call: built-in, immutable, without side effects or file access."""

NOT_IMMUTABLE = frozenset({
    "now", "random", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
    "timeofday", "gen_random_uuid", "nextval", "currval", "setval", "txid_current",
})

OPERATORS = frozenset({
    "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "||", "~", "~*", "!~", "!~*",
    "~~", "!~~", "~~*", "!~~*", "@>", "<@", "&&", "?", "?|", "?&",
})

_EXPR_KINDS = frozenset({
    A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL,
    A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT, A_Expr_Kind.AEXPR_NULLIF,
    A_Expr_Kind.AEXPR_IN, A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE,
    A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN,
})

_BETWEEN = frozenset({A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN})

CAST_TYPES: dict[str, str] = {
    "int8": "bigint", "bigint": "bigint", "int4": "integer", "integer": "integer", "int": "integer",
    "int2": "smallint", "smallint": "smallint", "text": "text", "varchar": "varchar",
    "bool": "boolean", "boolean": "boolean", "numeric": "numeric", "float4": "real", "real": "real",
    "float8": "double precision", "date": "date", "timestamp": "timestamp",
    "timestamptz": "timestamptz", "time": "time", "interval": "interval", "uuid": "uuid",
    "jsonb": "jsonb", "json": "json", "bytea": "bytea", "inet": "inet",
}
"""Type names a cast may use (PostgreSQL's internal names as pglast reports them)."""

_ALLOWED_NODES: tuple[type[ast.Node], ...] = (
    ast.A_Const, ast.ColumnRef, ast.A_Expr, ast.BoolExpr, ast.NullTest, ast.BooleanTest,
    ast.TypeCast, ast.TypeName, ast.FuncCall, ast.CoalesceExpr, ast.MinMaxExpr, ast.CaseExpr,
    ast.CaseWhen, ast.A_ArrayExpr, ast.String, ast.Integer, ast.Float, ast.Boolean,
)

SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "oid"})

MAX_EXPRESSION = 2000


@dataclass(frozen=True)
class CheckedExpression:
    sql: str
    """The expression deparsed from the accepted tree."""
    columns: tuple[str, ...]
    """The columns it references."""


class ExpressionRejected(ValueError):
    """The reason an expression is not accepted."""


def check_expression(text: str, columns: Set[str]) -> CheckedExpression:
    """The expression ``text`` re-deparsed, or :class:`ExpressionRejected` saying why not.

    ``columns`` are the names of the table's columns, the only names it may refer to.
    """
    if not text.strip():
        raise ExpressionRejected("the expression is empty")
    if len(text) > MAX_EXPRESSION:
        raise ExpressionRejected(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        statements = parse_sql(f"SELECT {text}")
    except ParseError as exc:
        raise ExpressionRejected(f"not a valid SQL expression: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise ExpressionRejected("must be one expression, not several statements")
    select = statements[0].stmt
    targets = select.targetList or ()
    if len(targets) != 1 or not isinstance(targets[0], ast.ResTarget) or targets[0].name:
        raise ExpressionRejected("must be exactly one expression")
    expression = targets[0].val
    if expression is None:
        raise ExpressionRejected("the expression is empty")
    # Anything besides the one target (FROM, WHERE, UNION, LIMIT...) shows in the deparsed text.
    deparsed = RawStream()(expression)
    if RawStream()(select) != f"SELECT {deparsed}":
        raise ExpressionRejected("must be a single expression (no FROM, WHERE or other clauses)")
    used: list[str] = []
    for node in _walk(expression):
        _judge(node, columns, used)
    return CheckedExpression(deparsed, tuple(dict.fromkeys(used)))


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    yield node
    slots: Iterable[str] = getattr(node, "__slots__", ())
    for name in slots:
        value = getattr(node, name, None)
        for child in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(child, ast.Node):
                yield from _walk(child)


def _judge(node: ast.Node, columns: Set[str], used: list[str]) -> None:
    if isinstance(node, ast.SubLink):
        raise ExpressionRejected("subqueries are not allowed")
    if isinstance(node, ast.SQLValueFunction):
        raise ExpressionRejected(
            "current_date, current_timestamp and the like are not immutable and are not allowed"
        )
    if isinstance(node, ast.ParamRef):
        raise ExpressionRejected("parameters ($1...) are not allowed")
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionRejected(f"{type(node).__name__} is not allowed in a table expression")
    if isinstance(node, ast.ColumnRef):
        fields = node.fields or ()
        if len(fields) != 1 or not isinstance(fields[0], ast.String):
            raise ExpressionRejected(
                "only unqualified column names of the same table may be referenced"
            )
        name = fields[0].sval or ""
        if name in SYSTEM_COLUMNS:
            raise ExpressionRejected(f"system column {name!r} is not allowed")
        if name not in columns:
            raise ExpressionRejected(f"column {name!r} is not a column of this table")
        used.append(name)
    elif isinstance(node, ast.A_Expr):
        if node.kind not in _EXPR_KINDS:
            kind = node.kind.name if node.kind is not None else "?"
            raise ExpressionRejected(f"the operator form {kind} is not allowed")
        names = node.name or ()
        if node.kind in _BETWEEN:
            return
        if len(names) != 1 or not isinstance(names[0], ast.String) or names[0].sval not in OPERATORS:
            shown = ".".join(getattr(n, "sval", "?") for n in names)
            raise ExpressionRejected(f"operator {shown!r} is not allowed")
    elif isinstance(node, ast.FuncCall):
        _judge_function(node)
    elif isinstance(node, ast.TypeName):
        _judge_type(node)


def _judge_function(node: ast.FuncCall) -> None:
    parts = [getattr(n, "sval", "") for n in node.funcname or ()]
    name = parts[-1] if parts else ""
    schema_ok = len(parts) == 1 or (len(parts) == 2 and parts[0] == "pg_catalog")
    if not schema_ok or name not in IMMUTABLE_FUNCTIONS:
        shown = ".".join(parts)
        if name in NOT_IMMUTABLE:
            raise ExpressionRejected(f"function {shown}() is not immutable and is not allowed")
        allowed = ", ".join(sorted(IMMUTABLE_FUNCTIONS))
        raise ExpressionRejected(f"function {shown}() is not allowed (allowed: {allowed})")
    if node.agg_star or node.agg_distinct or node.func_variadic or node.agg_within_group:
        raise ExpressionRejected(f"{name}(): aggregate or variadic call forms are not allowed")
    if node.agg_order or node.agg_filter is not None or node.over is not None:
        raise ExpressionRejected(f"{name}(): ORDER BY, FILTER and OVER are not allowed")


def _judge_type(node: ast.TypeName) -> None:
    parts = [getattr(n, "sval", "") for n in node.names or ()]
    name = parts[-1] if parts else ""
    schema_ok = len(parts) == 1 or (len(parts) == 2 and parts[0] == "pg_catalog")
    if not schema_ok or name not in CAST_TYPES or node.setof or node.pct_type:
        raise ExpressionRejected(f"cast to type {'.'.join(parts)!r} is not allowed")
    for mod in node.typmods or ():
        if not (isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer)):
            raise ExpressionRejected("type modifiers of a cast must be integer constants")
