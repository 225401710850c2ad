"""The SQL front end of the change model: PostgreSQL text -> :mod:`helios_migrate.changes` values.

Migration SQL (a hand-written ``.sql`` file, or the offline SQL Alembic renders for a revision) is
parsed with pglast, which embeds PostgreSQL's own grammar, and every statement is mapped to the
change values the rules consume.  One statement can give several changes (``ALTER TABLE`` with
several subcommands, ``DROP TABLE a, b``, ``TRUNCATE a, b``); a statement the model does not
describe becomes a :class:`~helios_migrate.changes.RawStatement`, which the knowledge base treats
conservatively.

Conventions (shared with the Alembic front end, see :mod:`helios_migrate.changes`):

* identifiers are stored as PostgreSQL stores them: unquoted names folded to lower case, quoted
  names as written; :class:`~helios_migrate.changes.QualifiedName` has ``schema`` ``None`` when the
  SQL did not name one;
* types go through :func:`helios_migrate.normalize.type_name_to_text` and expressions through
  :func:`helios_migrate.normalize.expr_to_text`;
* names the SQL did not give (an unnamed index or constraint) stay ``None``: none is invented;
* a column declared ``PRIMARY KEY`` or as an identity column is not nullable, as in PostgreSQL
  (and as SQLAlchemy reports such a column).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import (
    AlterTableType,
    ConstrType,
    DropBehavior,
    ObjectType,
    ReindexObjectType,
    SortByDir,
    SortByNulls,
    TransactionStmtKind,
    VariableSetKind,
)
from pglast.parser import ParseError, scan

from helios_migrate.changes import (
    AddColumn,
    AddConstraint,
    AddEnumValue,
    AlterColumnType,
    AttachPartition,
    Change,
    Cluster,
    ColumnDef,
    Constraint,
    ConstraintKind,
    CreateEnum,
    CreateIndex,
    CreateTable,
    CreateTrigger,
    CreateView,
    DataOperation,
    DetachPartition,
    DropColumn,
    DropConstraint,
    DropDefault,
    DropEnum,
    DropIndex,
    DropNotNull,
    DropTable,
    DropTrigger,
    DropView,
    ForeignKeyTarget,
    GeneratedKind,
    IdentityKind,
    ModifyRows,
    QualifiedName,
    RawStatement,
    RefreshMaterializedView,
    Reindex,
    ReindexTarget,
    RenameColumn,
    RenameEnumValue,
    RenameTable,
    SetDefault,
    SetNotNull,
    SetSetting,
    TransactionAction,
    TransactionControl,
    TruncateTable,
    VacuumFull,
    ValidateConstraint,
)
from helios_migrate.normalize import expr_to_text, type_name_to_text
from helios_migrate.sqltext import quote_ident

__all__ = ["SqlSyntaxError", "Statement", "changes_from_sql", "constraint_from_definition", "parse_statements"]

# pglast's nodes are typed in its stubs with every field optional; the mapping below reads the
# fields the grammar guarantees for each statement kind, so nodes are handled as ``Any`` here.
Node = Any


class SqlSyntaxError(Exception):
    """The SQL does not parse.  ``str()`` gives ``source:line:column: message``."""

    def __init__(self, message: str, source: str, line: int, column: int) -> None:
        super().__init__(message, source, line, column)
        self.message = message
        self.source = source
        self.line = line
        """1-based line of the error in the whole input."""
        self.column = column
        """1-based column (in characters) of the error on its line."""

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class Statement:
    """One parsed statement and the changes it makes."""

    sql: str
    """The statement's own text: without surrounding whitespace, comments and semicolon."""
    source: str
    line: int
    """1-based line of the statement's first token within the whole input."""
    column: int
    """1-based column (in characters) of the statement's first token."""
    node_type: str
    """pglast node class name, e.g. ``AlterTableStmt``."""
    changes: tuple[Change, ...]


def parse_statements(sql: str, source: str = "<sql>") -> list[Statement]:
    """Parse ``sql`` (any number of statements) into :class:`Statement` values, in input order.

    ``source`` names the input (a file name) in the statements and in errors.  Raises
    :class:`SqlSyntaxError` with the line and column of the error when the SQL does not parse.
    The same text is parsed once per process (statements are immutable): a project's revisions
    repeat ``BEGIN``, ``COMMIT`` and the version-table updates, and the history pass re-reads them.
    """
    try:
        parsed = _parse_cached(sql)
    except ParseError as exc:
        raise _syntax_error(exc, sql, source) from None
    return [st if st.source == source else replace(st, source=source) for st in parsed]


@functools.lru_cache(maxsize=8192)
def _parse_cached(sql: str, source: str = "<sql>") -> tuple[Statement, ...]:
    raws = parse_sql(sql)
    text = _Text(sql, _PARSER_OFFSETS_IN_BYTES)
    statements: list[Statement] = []
    for raw in raws:
        location = raw.stmt_location or 0
        start = text.index(location)
        end = text.index(location + raw.stmt_len) if raw.stmt_len else len(sql)
        start, end = _trim(sql, start, end)
        node = raw.stmt
        ctx = _Context(text=text, sql=sql[start:end], end=end)
        line, column = text.line_col(start)
        statements.append(
            Statement(
                sql=ctx.sql,
                source=source,
                line=line,
                column=column,
                node_type=type(node).__name__,
                changes=tuple(_changes(ctx, node)),
            )
        )
    return tuple(statements)


def changes_from_sql(sql: str) -> list[Change]:
    """All changes the statements of ``sql`` make, in order (see :func:`parse_statements`)."""
    return [change for statement in parse_statements(sql) for change in statement.changes]


def constraint_from_definition(definition: str) -> Constraint | None:
    """The constraint a definition as ``pg_get_constraintdef`` prints it describes (``FOREIGN KEY
    (a) REFERENCES s.t(id)``, ``UNIQUE (b)``...), read by this parser (quoted names, commas and dots
    inside them, schemas); ``None`` when it does not read as one constraint."""
    try:
        changes = changes_from_sql(f"ALTER TABLE t ADD CONSTRAINT c {definition}")
    except SqlSyntaxError:
        return None
    added = [ch.constraint for ch in changes if isinstance(ch, AddConstraint)]
    return added[0] if len(added) == 1 else None


# --- positions --------------------------------------------------------------------------------


class _Text:
    """The input text, and conversions from parser offsets to indexes, lines and columns."""

    def __init__(self, text: str, offsets_in_bytes: bool) -> None:
        self.text = text
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self._byte_starts: list[int] | None = None
        if offsets_in_bytes and not text.isascii():
            starts, pos = [], 0
            for ch in text:
                starts.append(pos)
                pos += len(ch.encode("utf-8"))
            starts.append(pos)
            self._byte_starts = starts

    def index(self, offset: int) -> int:
        """Character index of a parser offset (a byte offset for older pglast releases)."""
        if self._byte_starts is None:
            return offset
        return bisect.bisect_right(self._byte_starts, offset) - 1

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of a character index."""
        line = bisect.bisect_right(self._line_starts, index)
        return line, index - self._line_starts[line - 1] + 1


def _probe_parser_offsets_in_bytes() -> bool:
    # pglast 8 reports character offsets; earlier releases report UTF-8 byte offsets.
    second = parse_sql("SELECT 'é'; SELECT 1")[1].stmt_location
    return bool(second == len("SELECT 'é'; ".encode()))


def _probe_scan_offsets_in_bytes() -> bool:
    return bool(scan("'é' x")[1].start == len("'é' ".encode()))


def _probe_error_index_base() -> int:
    # pglast 8 reports a 0-based character index, earlier releases PostgreSQL's 1-based cursorpos.
    try:
        parse_sql("SELECT 1 FROM FROM")
    except ParseError as exc:
        reported = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(reported, int):
            return reported - len("SELECT 1 FROM ")
    return 0


_PARSER_OFFSETS_IN_BYTES = _probe_parser_offsets_in_bytes()
_SCAN_OFFSETS_IN_BYTES = _probe_scan_offsets_in_bytes()
_ERROR_INDEX_BASE = _probe_error_index_base()
_COMMENT_TOKENS = frozenset({"SQL_COMMENT", "C_COMMENT"})


def _syntax_error(exc: ParseError, sql: str, source: str) -> SqlSyntaxError:
    message = str(exc.args[0]) if exc.args else str(exc)
    reported = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(reported, int):
        index = min(max(reported - _ERROR_INDEX_BASE, 0), len(sql))
    elif "end of input" in message:
        index = len(sql.rstrip())
    else:
        index = 0
    line, column = _Text(sql, False).line_col(index)
    return SqlSyntaxError(message, source, line, column)


def _trim(sql: str, start: int, end: int) -> tuple[int, int]:
    """Narrow ``sql[start:end]`` to its first and last tokens (no blanks, comments or ``;``)."""
    segment = sql[start:end]
    try:
        tokens = [t for t in scan(segment) if t.name not in _COMMENT_TOKENS]
    except ParseError:
        tokens = []
    while tokens and tokens[-1].name == "ASCII_59":  # ';'
        tokens.pop()
    if not tokens:
        stripped = segment.strip().rstrip(";").rstrip()
        lead = len(segment) - len(segment.lstrip())
        return start + lead, start + lead + len(stripped)
    local = _Text(segment, _SCAN_OFFSETS_IN_BYTES)
    return start + local.index(tokens[0].start), start + local.index(tokens[-1].end) + 1


# --- mapping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    text: _Text
    sql: str
    """The statement's text."""
    end: int
    """Index in the whole input just past the statement."""

    def raw(self, node: Node, relations: Iterable[QualifiedName] | None = None) -> RawStatement:
        rels = tuple(relations) if relations is not None else _relations(node)
        return RawStatement(sql=self.sql, statement_type=type(node).__name__, relations=rels)


def _changes(ctx: _Context, node: Node) -> list[Change]:
    handler = _HANDLERS.get(type(node).__name__)
    if handler is None:
        return [ctx.raw(node)]
    return handler(ctx, node)


def _qname(range_var: Node) -> QualifiedName:
    return QualifiedName(str(range_var.relname), range_var.schemaname)


def _qname_from_names(names: Sequence[Node]) -> QualifiedName:
    parts = [str(n.sval) for n in names]
    return QualifiedName(parts[-1], parts[-2] if len(parts) > 1 else None)


def _names(nodes: Sequence[Node] | None) -> tuple[str, ...]:
    return tuple(str(n.sval) for n in nodes or ())


def _dotted(nodes: Sequence[Node] | None) -> str:
    return ".".join(_names(nodes))


def _quoted_dotted(nodes: Sequence[Node] | None) -> str:
    return ".".join(quote_ident(n) for n in _names(nodes))


def _cascade(node: Node) -> bool:
    return bool(node.behavior == DropBehavior.DROP_CASCADE)


def _option_enabled(options: Sequence[Node] | None, name: str) -> bool:
    """Whether a ``DefElem`` option (``(CONCURRENTLY)``, ``(FULL false)``) is given and on."""
    for option in options or ():
        if option.defname == name:
            arg = option.arg
            if arg is None:
                return True
            value = getattr(arg, "val", arg)
            raw = getattr(value, "sval", None)
            if raw is None:
                raw = getattr(value, "boolval", None)
            if raw is None:
                raw = getattr(value, "ival", None)
            return str(raw).lower() not in {"false", "off", "0", "no"}
    return False


# --- columns and constraints ------------------------------------------------------------------

_FK_ACTIONS: dict[str, str | None] = {
    "a": None,  # NO ACTION, the default
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}


def _fk_action(code: str | None, set_columns: Sequence[Node] | None) -> str | None:
    action = _FK_ACTIONS.get(code or "a")
    if action is not None and set_columns:
        action = f"{action} ({', '.join(_names(set_columns))})"
    return action


def _fk_target(con: Node) -> ForeignKeyTarget:
    return ForeignKeyTarget(table=_qname(con.pktable), columns=_names(con.pk_attrs))


def _generated_kind(ctx: _Context, con: Node) -> GeneratedKind | None:
    """``STORED``/``VIRTUAL`` as written after ``GENERATED ALWAYS AS (...)``; ``None`` if absent.

    The parse tree cannot tell: PostgreSQL 18 fills in VIRTUAL when nothing is written.
    """
    location = con.location
    if location is None or location < 0:
        return None
    start = ctx.text.index(location)
    try:
        tokens = [t.name for t in scan(ctx.text.text[start : ctx.end])]
    except ParseError:
        return None
    depth = 0
    for i, name in enumerate(tokens):
        if name == "ASCII_40":
            depth += 1
        elif name == "ASCII_41":
            depth -= 1
            if depth == 0:
                following = tokens[i + 1] if i + 1 < len(tokens) else ""
                if following == "STORED":
                    return GeneratedKind.STORED
                if following == "VIRTUAL":
                    return GeneratedKind.VIRTUAL
                return None
    return None


def _column_def(ctx: _Context, col: Node) -> ColumnDef:
    nullable = True
    default: str | None = None
    identity: IdentityKind | None = None
    generated: str | None = None
    generated_kind: GeneratedKind | None = None
    primary_key = unique = False
    references: ForeignKeyTarget | None = None
    checks: list[str] = []
    for con in col.constraints or ():
        contype = con.contype
        if contype == ConstrType.CONSTR_NOTNULL:
            nullable = False
        elif contype == ConstrType.CONSTR_NULL:
            nullable = True
        elif contype == ConstrType.CONSTR_DEFAULT:
            default = expr_to_text(con.raw_expr)
        elif contype == ConstrType.CONSTR_IDENTITY:
            identity = IdentityKind.ALWAYS if con.generated_when == "a" else IdentityKind.BY_DEFAULT
            nullable = False
        elif contype == ConstrType.CONSTR_GENERATED:
            generated = expr_to_text(con.raw_expr)
            generated_kind = _generated_kind(ctx, con)
        elif contype == ConstrType.CONSTR_PRIMARY:
            primary_key = True
            nullable = False
        elif contype == ConstrType.CONSTR_UNIQUE:
            unique = True
        elif contype == ConstrType.CONSTR_FOREIGN:
            references = _fk_target(con)
        elif contype == ConstrType.CONSTR_CHECK:
            checks.append(expr_to_text(con.raw_expr))
    if len(checks) > 1:
        check: str | None = " AND ".join(f"({c})" for c in checks)
    else:
        check = checks[0] if checks else None
    collation = _dotted(col.collClause.collname) if col.collClause is not None else None
    return ColumnDef(
        name=str(col.colname),
        type=type_name_to_text(col.typeName) if col.typeName is not None else "",
        nullable=nullable,
        default=default,
        identity=identity,
        generated=generated,
        generated_kind=generated_kind,
        primary_key=primary_key,
        unique=unique,
        references=references,
        check=check,
        collation=collation,
    )


def _constraint(con: Node) -> Constraint | None:
    """A table constraint, or ``None`` for a kind the model does not describe."""
    contype = con.contype
    name = con.conname
    # NOT ENFORCED (PostgreSQL 18) also sets skip_validation; it is not a NOT VALID constraint.
    enforced = bool(getattr(con, "is_enforced", True)) or contype not in (
        ConstrType.CONSTR_CHECK,
        ConstrType.CONSTR_FOREIGN,
    )
    not_valid = bool(con.skip_validation) and enforced
    deferrable = bool(con.deferrable)
    if contype == ConstrType.CONSTR_CHECK:
        return Constraint(
            ConstraintKind.CHECK,
            name,
            expression=expr_to_text(con.raw_expr),
            not_valid=not_valid,
            enforced=enforced,
        )
    if contype == ConstrType.CONSTR_FOREIGN:
        return Constraint(
            ConstraintKind.FOREIGN_KEY,
            name,
            columns=_names(con.fk_attrs),
            references=_fk_target(con),
            on_delete=_fk_action(con.fk_del_action, getattr(con, "fk_del_set_cols", None)),
            on_update=_fk_action(con.fk_upd_action, None),
            not_valid=not_valid,
            deferrable=deferrable,
            enforced=enforced,
        )
    if contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY):
        kind = (
            ConstraintKind.UNIQUE
            if contype == ConstrType.CONSTR_UNIQUE
            else ConstraintKind.PRIMARY_KEY
        )
        return Constraint(
            kind,
            name,
            columns=_names(con.keys),
            using_index=con.indexname,
            deferrable=deferrable,
        )
    if contype == ConstrType.CONSTR_EXCLUSION:
        # columns: the excluded elements; expression: the partial-constraint predicate.
        return Constraint(
            ConstraintKind.EXCLUDE,
            name,
            columns=tuple(_index_elem(pair[0]) for pair in con.exclusions or ()),
            expression=expr_to_text(con.where_clause) if con.where_clause is not None else None,
            deferrable=deferrable,
        )
    if contype == ConstrType.CONSTR_NOTNULL:
        return Constraint(
            ConstraintKind.NOT_NULL, name, columns=_names(con.keys), not_valid=not_valid
        )
    return None


# --- tables -----------------------------------------------------------------------------------

_PARTITION_STRATEGIES = {"r": "RANGE", "l": "LIST", "h": "HASH"}


def _partition_spec(spec: Node) -> str:
    strategy = _PARTITION_STRATEGIES.get(str(spec.strategy), str(spec.strategy))
    elems = []
    for elem in spec.partParams or ():
        text = str(elem.name) if elem.name is not None else expr_to_text(elem.expr)
        if elem.collation:
            text += f" COLLATE {_quoted_dotted(elem.collation)}"
        if elem.opclass:
            text += f" {_quoted_dotted(elem.opclass)}"
        elems.append(text)
    return f"{strategy} ({', '.join(elems)})"


def _create_table(ctx: _Context, node: Node) -> list[Change]:
    columns: list[ColumnDef] = []
    constraints: list[Constraint] = []
    for elt in node.tableElts or ():
        if isinstance(elt, ast.ColumnDef):
            columns.append(_column_def(ctx, elt))
        elif isinstance(elt, ast.Constraint):
            con = _constraint(elt)
            if con is not None:
                constraints.append(con)
    partition_of = partition_bound = None
    if node.partbound is not None:
        partition_bound = expr_to_text(node.partbound)
        if node.inhRelations:
            partition_of = _qname(node.inhRelations[0])
    return [
        CreateTable(
            on=_qname(node.relation),
            columns=tuple(columns),
            constraints=tuple(constraints),
            if_not_exists=bool(node.if_not_exists),
            partition_of=partition_of,
            partition_bound=partition_bound,
            partition_by=_partition_spec(node.partspec) if node.partspec is not None else None,
        )
    ]


def _alter_table(ctx: _Context, node: Node) -> list[Change]:
    table = _qname(node.relation)
    if node.objtype != ObjectType.OBJECT_TABLE:
        return [ctx.raw(node, [table])]
    changes: list[Change] = []
    raw_added = False
    for cmd in node.cmds or ():
        change = _alter_table_cmd(ctx, table, cmd)
        if change is not None:
            changes.append(change)
        elif not raw_added:
            changes.append(ctx.raw(node, [table]))
            raw_added = True
    return changes


def _alter_table_cmd(ctx: _Context, table: QualifiedName, cmd: Node) -> Change | None:
    sub = cmd.subtype
    name = cmd.name
    if sub == AlterTableType.AT_AddColumn:
        return AddColumn(
            table, column=_column_def(ctx, cmd.def_), if_not_exists=bool(cmd.missing_ok)
        )
    if sub == AlterTableType.AT_DropColumn:
        return DropColumn(table, column=name, if_exists=bool(cmd.missing_ok), cascade=_cascade(cmd))
    if sub == AlterTableType.AT_AlterColumnType:
        col = cmd.def_
        return AlterColumnType(
            table,
            column=name,
            new_type=type_name_to_text(col.typeName),
            using=expr_to_text(col.raw_default) if col.raw_default is not None else None,
            collation=_dotted(col.collClause.collname) if col.collClause is not None else None,
        )
    if sub == AlterTableType.AT_SetNotNull:
        return SetNotNull(table, column=name)
    if sub == AlterTableType.AT_DropNotNull:
        return DropNotNull(table, column=name)
    if sub == AlterTableType.AT_ColumnDefault:
        if cmd.def_ is None:
            return DropDefault(table, column=name)
        return SetDefault(table, column=name, default=expr_to_text(cmd.def_))
    if sub == AlterTableType.AT_AddConstraint:
        con = _constraint(cmd.def_)
        return AddConstraint(table, constraint=con) if con is not None else None
    if sub == AlterTableType.AT_DropConstraint:
        return DropConstraint(
            table, name=name, if_exists=bool(cmd.missing_ok), cascade=_cascade(cmd)
        )
    if sub == AlterTableType.AT_ValidateConstraint:
        return ValidateConstraint(table, name=name)
    if sub == AlterTableType.AT_AttachPartition:
        part = cmd.def_
        return AttachPartition(table, partition=_qname(part.name), bound=expr_to_text(part.bound))
    if sub == AlterTableType.AT_DetachPartition:
        part = cmd.def_
        return DetachPartition(
            table, partition=_qname(part.name), concurrently=bool(part.concurrent)
        )
    if sub == AlterTableType.AT_DetachPartitionFinalize:
        return DetachPartition(table, partition=_qname(cmd.def_.name), finalize=True)
    return None


def _rename(ctx: _Context, node: Node) -> list[Change]:
    if node.relation is None:
        return [ctx.raw(node)]
    table = _qname(node.relation)
    if node.renameType == ObjectType.OBJECT_TABLE:
        return [RenameTable(table, new_name=str(node.newname))]
    if node.renameType == ObjectType.OBJECT_COLUMN and node.relationType == ObjectType.OBJECT_TABLE:
        return [RenameColumn(table, column=str(node.subname), new_name=str(node.newname))]
    return [ctx.raw(node, [table])]


def _drop(ctx: _Context, node: Node) -> list[Change]:
    kind = node.removeType
    if_exists = bool(node.missing_ok)
    cascade = _cascade(node)
    objects = node.objects or ()
    if kind == ObjectType.OBJECT_TABLE:
        return [
            DropTable(_qname_from_names(o), if_exists=if_exists, cascade=cascade) for o in objects
        ]
    if kind == ObjectType.OBJECT_INDEX:
        return [
            DropIndex(
                _qname_from_names(o),
                concurrently=bool(node.concurrent),
                if_exists=if_exists,
                cascade=cascade,
            )
            for o in objects
        ]
    if kind in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        materialized = kind == ObjectType.OBJECT_MATVIEW
        return [
            DropView(
                _qname_from_names(o),
                materialized=materialized,
                if_exists=if_exists,
                cascade=cascade,
            )
            for o in objects
        ]
    if kind == ObjectType.OBJECT_TYPE:
        return [
            DropEnum(_qname_from_names(o.names), if_exists=if_exists, cascade=cascade)
            for o in objects
        ]
    if kind == ObjectType.OBJECT_TRIGGER:
        return [
            DropTrigger(_qname_from_names(o[:-1]), name=str(o[-1].sval), if_exists=if_exists)
            for o in objects
        ]
    if kind in (ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_FOREIGN_TABLE):
        return [ctx.raw(node, [_qname_from_names(o) for o in objects])]
    if kind == ObjectType.OBJECT_POLICY:  # DROP POLICY locks its table ACCESS EXCLUSIVE
        return [ctx.raw(node, [_qname_from_names(o[:-1]) for o in objects])]
    return [ctx.raw(node)]


def _truncate(ctx: _Context, node: Node) -> list[Change]:
    return [
        TruncateTable(_qname(rel), cascade=_cascade(node), restart_identity=bool(node.restart_seqs))
        for rel in node.relations or ()
    ]


def _vacuum(ctx: _Context, node: Node) -> list[Change]:
    tables = [_qname(rel.relation) for rel in node.rels or ()]
    if node.is_vacuumcmd and tables and _option_enabled(node.options, "full"):
        return [VacuumFull(t) for t in tables]
    return [ctx.raw(node, tables)]


def _cluster(ctx: _Context, node: Node) -> list[Change]:
    if node.relation is None:
        return [ctx.raw(node, ())]
    return [Cluster(_qname(node.relation), index=node.indexname)]


# --- indexes ----------------------------------------------------------------------------------


def _index_elem(elem: Node) -> str:
    """An index element as SQL text: the column name (through ``quote_ident``) or expression,
    then what was written after it.  ``("col")`` is the column, as PostgreSQL reads it."""
    if elem.name is not None:
        text = quote_ident(str(elem.name))
    elif (
        isinstance(elem.expr, ast.ColumnRef)
        and len(fields := elem.expr.fields or ()) == 1
        and isinstance(fields[0], ast.String)
    ):
        text = quote_ident(str(fields[0].sval))
    else:
        text = expr_to_text(elem.expr)
    if elem.collation:
        text += f" COLLATE {_quoted_dotted(elem.collation)}"
    if elem.opclass:
        text += f" {_quoted_dotted(elem.opclass)}"
    descending = elem.ordering == SortByDir.SORTBY_DESC
    if descending:
        text += " DESC"
    if elem.nulls_ordering == SortByNulls.SORTBY_NULLS_FIRST and not descending:
        text += " NULLS FIRST"
    elif elem.nulls_ordering == SortByNulls.SORTBY_NULLS_LAST and descending:
        text += " NULLS LAST"
    return text


def _create_index(ctx: _Context, node: Node) -> list[Change]:
    return [
        CreateIndex(
            _qname(node.relation),
            name=node.idxname,
            columns=tuple(_index_elem(e) for e in node.indexParams or ()),
            unique=bool(node.unique),
            concurrently=bool(node.concurrent),
            if_not_exists=bool(node.if_not_exists),
            where=expr_to_text(node.whereClause) if node.whereClause is not None else None,
            method=str(node.accessMethod or "btree"),
            include=tuple(_index_elem(e) for e in node.indexIncludingParams or ()),
            only=not node.relation.inh,
        )
    ]


def _reindex(ctx: _Context, node: Node) -> list[Change]:
    targets = {
        ReindexObjectType.REINDEX_OBJECT_INDEX: ReindexTarget.INDEX,
        ReindexObjectType.REINDEX_OBJECT_TABLE: ReindexTarget.TABLE,
    }
    target = targets.get(node.kind)
    if target is None or node.relation is None:
        return [ctx.raw(node, ())]
    concurrently = _option_enabled(node.params, "concurrently") or bool(
        getattr(node, "concurrent", False)
    )
    return [Reindex(target, _qname(node.relation), concurrently=concurrently)]


# --- types ------------------------------------------------------------------------------------


def _create_enum(ctx: _Context, node: Node) -> list[Change]:
    return [CreateEnum(_qname_from_names(node.typeName), values=_names(node.vals))]


def _alter_enum(ctx: _Context, node: Node) -> list[Change]:
    name = _qname_from_names(node.typeName)
    if node.oldVal is not None:
        return [RenameEnumValue(name, old_value=str(node.oldVal), new_value=str(node.newVal))]
    neighbor = node.newValNeighbor
    return [
        AddEnumValue(
            name,
            value=str(node.newVal),
            before=neighbor if neighbor is not None and not node.newValIsAfter else None,
            after=neighbor if neighbor is not None and node.newValIsAfter else None,
            if_not_exists=bool(node.skipIfNewValExists),
        )
    ]


# --- triggers and views -----------------------------------------------------------------------

_TRIGGER_ROW = 1 << 0
_TRIGGER_BEFORE = 1 << 1
_TRIGGER_INSTEAD = 1 << 6
_TRIGGER_EVENTS = ((1 << 2, "insert"), (1 << 4, "update"), (1 << 3, "delete"), (1 << 5, "truncate"))


def _create_trigger(ctx: _Context, node: Node) -> list[Change]:
    timing_bits = int(node.timing or 0)
    if timing_bits & _TRIGGER_INSTEAD:
        timing = "instead of"
    elif timing_bits & _TRIGGER_BEFORE:
        timing = "before"
    else:
        timing = "after"
    events = int(node.events or 0)
    return [
        CreateTrigger(
            _qname(node.relation),
            name=str(node.trigname),
            function=_dotted(node.funcname),
            timing=timing,
            events=tuple(name for bit, name in _TRIGGER_EVENTS if events & bit),
            for_each_row=bool(node.row),
            or_replace=bool(node.replace),
            written=ctx.sql if (
                node.columns or node.whenClause or node.args or node.transitionRels or node.isconstraint
            ) else "",
        )
    ]


def _create_view(ctx: _Context, node: Node) -> list[Change]:
    return [
        CreateView(
            _qname(node.view),
            definition=expr_to_text(node.query),
            or_replace=bool(node.replace),
            reads=_relations(node.query),
        )
    ]


def _create_table_as(ctx: _Context, node: Node) -> list[Change]:
    if node.objtype != ObjectType.OBJECT_MATVIEW:
        return [ctx.raw(node)]
    return [
        CreateView(
            _qname(node.into.rel),
            definition=expr_to_text(node.query),
            materialized=True,
            reads=_relations(node.query),
        )
    ]


def _refresh(ctx: _Context, node: Node) -> list[Change]:
    return [RefreshMaterializedView(_qname(node.relation), concurrently=bool(node.concurrent))]


# --- data, settings, transactions -------------------------------------------------------------


def _insert(ctx: _Context, node: Node) -> list[Change]:
    return [
        ModifyRows(
            _qname(node.relation),
            operation=DataOperation.INSERT,
            columns=tuple(str(c.name) for c in node.cols or ()),
        )
    ]


def _update(ctx: _Context, node: Node) -> list[Change]:
    return [
        ModifyRows(
            _qname(node.relation),
            operation=DataOperation.UPDATE,
            has_where=node.whereClause is not None,
            columns=tuple(str(t.name) for t in node.targetList or ()),
        )
    ]


def _delete(ctx: _Context, node: Node) -> list[Change]:
    return [
        ModifyRows(
            _qname(node.relation),
            operation=DataOperation.DELETE,
            has_where=node.whereClause is not None,
        )
    ]


def _setting_value(arg: Node) -> str:
    if isinstance(arg, ast.A_Const):
        value = arg.val
        for attr in ("sval", "fval", "ival", "boolval"):
            if hasattr(value, attr):
                raw = getattr(value, attr)
                if isinstance(raw, bool):
                    return "true" if raw else "false"
                return str(raw)
    return expr_to_text(arg)


def _variable_set(ctx: _Context, node: Node) -> list[Change]:
    kind = node.kind
    local = bool(node.is_local)
    if kind == VariableSetKind.VAR_SET_VALUE:
        value = ", ".join(_setting_value(a) for a in node.args or ())
        return [SetSetting(str(node.name).lower(), value, local=local)]
    if kind in (VariableSetKind.VAR_SET_DEFAULT, VariableSetKind.VAR_RESET):
        return [SetSetting(str(node.name).lower(), None, local=local)]
    if kind == VariableSetKind.VAR_RESET_ALL:
        return [SetSetting("all", None)]
    return [ctx.raw(node, ())]


_TRANSACTION_ACTIONS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: TransactionAction.BEGIN,
    TransactionStmtKind.TRANS_STMT_START: TransactionAction.BEGIN,
    TransactionStmtKind.TRANS_STMT_COMMIT: TransactionAction.COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK: TransactionAction.ROLLBACK,
}


def _transaction(ctx: _Context, node: Node) -> list[Change]:
    action = _TRANSACTION_ACTIONS.get(node.kind)
    if action is None:
        return [ctx.raw(node, ())]
    return [TransactionControl(action)]


def _comment(ctx: _Context, node: Node) -> list[Change]:
    """``COMMENT ON TABLE/COLUMN``: unmodelled, but the table it locks is known."""
    names = node.object if isinstance(node.object, tuple) else ()
    if node.objtype == ObjectType.OBJECT_COLUMN and len(names) >= 2:
        return [ctx.raw(node, [_qname_from_names(names[:-1])])]
    if node.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW) and names:
        return [ctx.raw(node, [_qname_from_names(names)])]
    return [ctx.raw(node, ())]


def _select(ctx: _Context, node: Node) -> list[Change]:
    """A SELECT is unmodelled, unless its WITH clause writes rows (``WITH u AS (UPDATE ...)``):
    then each data-modifying CTE is a row change of its own."""
    writes: list[Change] = []
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes or ()) if with_clause is not None else ():
        inner = cte.ctequery
        handler = _DATA_HANDLERS.get(type(inner).__name__)
        if handler is not None:
            writes += handler(ctx, inner)
    return writes or [ctx.raw(node)]


_HANDLERS: dict[str, Callable[[_Context, Node], list[Change]]] = {
    "SelectStmt": _select,
    "CommentStmt": _comment,
    "CreateStmt": _create_table,
    "AlterTableStmt": _alter_table,
    "RenameStmt": _rename,
    "DropStmt": _drop,
    "TruncateStmt": _truncate,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "IndexStmt": _create_index,
    "ReindexStmt": _reindex,
    "CreateEnumStmt": _create_enum,
    "AlterEnumStmt": _alter_enum,
    "CreateTrigStmt": _create_trigger,
    "ViewStmt": _create_view,
    "CreateTableAsStmt": _create_table_as,
    "RefreshMatViewStmt": _refresh,
    "InsertStmt": _insert,
    "UpdateStmt": _update,
    "DeleteStmt": _delete,
    "VariableSetStmt": _variable_set,
    "TransactionStmt": _transaction,
}


# --- relations a statement mentions -----------------------------------------------------------


def _relations(node: Node) -> tuple[QualifiedName, ...]:
    """Relations (``RangeVar``) under ``node`` in order of first mention in the source.

    Names of common table expressions in scope are not relations and are left out.
    """
    found: list[tuple[int, QualifiedName]] = []
    _collect(node, frozenset(), found)
    found.sort(key=lambda item: item[0])  # stable: ties keep the walk order
    seen: set[QualifiedName] = set()
    out: list[QualifiedName] = []
    for _, name in found:
        if name not in seen:
            seen.add(name)
            out.append(name)
    return tuple(out)


def _collect(node: Node, ctes: frozenset[str], found: list[tuple[int, QualifiedName]]) -> None:
    if isinstance(node, (tuple, list)):
        for item in node:
            _collect(item, ctes, found)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.RangeVar):
        if node.schemaname is None and node.relname in ctes:
            return
        location = node.location if node.location is not None and node.location >= 0 else -1
        found.append((location, _qname(node)))
        return
    with_clause = getattr(node, "withClause", None)
    if with_clause is not None:
        ctes_list = with_clause.ctes or ()
        names = [str(cte.ctename) for cte in ctes_list]
        for i, cte in enumerate(ctes_list):
            visible = names if with_clause.recursive else names[:i]
            _collect(cte.ctequery, ctes | frozenset(visible), found)
        ctes = ctes | frozenset(names)
    for attr in getattr(type(node), "__slots__", ()):
        if attr == "withClause":
            continue
        value = getattr(node, attr, None)
        if isinstance(value, (ast.Node, tuple, list)):
            _collect(value, ctes, found)


_DATA_HANDLERS: dict[str, Callable[[_Context, Node], list[Change]]] = {
    "InsertStmt": _insert,
    "UpdateStmt": _update,
    "DeleteStmt": _delete,
}
