"""A checked :class:`~.design_doc.Design` rendered as a SQLAlchemy 2 models module and as DDL.

Both come from one description of the module: a small tree of :class:`Call` values (SQLAlchemy
constructors from a fixed table, with constant arguments).  :func:`render_models` writes that tree
as Python source -- every string through ``repr()``, class and attribute names derived from the
table and column names as plain ASCII identifiers -- and :func:`build_metadata` calls the same
constructors in-process to build the ``MetaData`` the DDL is compiled from.  The models module is
never executed to get the DDL, and no text from the description is spliced into code or SQL:
names and literals are quoted by SQLAlchemy, expressions were re-deparsed by pglast.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .design_doc import Column, ColumnType, Design, Table, default_sql

LINE = 100

_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "sa.BigInteger": sa.BigInteger, "sa.Integer": sa.Integer, "sa.SmallInteger": sa.SmallInteger,
    "sa.Text": sa.Text, "sa.String": sa.String, "sa.Boolean": sa.Boolean, "sa.Numeric": sa.Numeric,
    "sa.REAL": sa.REAL, "sa.Double": sa.Double, "sa.Date": sa.Date, "sa.DateTime": sa.DateTime,
    "sa.Time": sa.Time, "sa.Uuid": sa.Uuid, "sa.LargeBinary": sa.LargeBinary,
    "postgresql.INTERVAL": postgresql.INTERVAL, "postgresql.JSONB": postgresql.JSONB,
    "postgresql.JSON": postgresql.JSON, "postgresql.INET": postgresql.INET,
    "postgresql.ARRAY": postgresql.ARRAY, "postgresql.ENUM": postgresql.ENUM,
    "sa.Identity": sa.Identity, "sa.text": sa.text, "sa.CheckConstraint": sa.CheckConstraint,
    "sa.UniqueConstraint": sa.UniqueConstraint, "sa.PrimaryKeyConstraint": sa.PrimaryKeyConstraint,
    "sa.ForeignKeyConstraint": sa.ForeignKeyConstraint, "sa.Index": sa.Index,
}
"""Everything a rendered module calls, by the name it is written with."""

_SCALARS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # vocabulary name: (constructor, Python type for Mapped[...], keyword arguments)
    "bigint": ("sa.BigInteger", "int", {}),
    "integer": ("sa.Integer", "int", {}),
    "smallint": ("sa.SmallInteger", "int", {}),
    "text": ("sa.Text", "str", {}),
    "varchar": ("sa.String", "str", {}),
    "boolean": ("sa.Boolean", "bool", {}),
    "numeric": ("sa.Numeric", "decimal.Decimal", {}),
    "real": ("sa.REAL", "float", {}),
    "double": ("sa.Double", "float", {}),
    "date": ("sa.Date", "datetime.date", {}),
    "timestamp": ("sa.DateTime", "datetime.datetime", {}),
    "timestamptz": ("sa.DateTime", "datetime.datetime", {"timezone": True}),
    "time": ("sa.Time", "datetime.time", {}),
    "interval": ("postgresql.INTERVAL", "datetime.timedelta", {}),
    "uuid": ("sa.Uuid", "uuid.UUID", {}),
    "jsonb": ("postgresql.JSONB", "Any", {}),
    "json": ("postgresql.JSON", "Any", {}),
    "bytea": ("sa.LargeBinary", "bytes", {}),
    "inet": ("postgresql.INET", "str", {}),
    "enum": ("", "str", {}),
}

_MODULE_NAMES = frozenset({
    "sa", "postgresql", "datetime", "decimal", "uuid", "Any", "Mapped", "mapped_column",
    "DeclarativeBase", "Base", "int", "str", "bool", "float", "bytes", "list", "dict", "None",
    "metadata", "registry", "type_annotation_map",
})
"""Names a class body must not rebind: the module's imports, the types its annotations use and
the attributes DeclarativeBase reserves."""


@dataclass(frozen=True)
class Ref:
    """A name defined in the module (an enum type, ``Base.metadata``)."""

    name: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ColumnPlan:
    attribute: str
    python_type: str
    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class TablePlan:
    class_name: str
    name: str
    columns: tuple[ColumnPlan, ...]
    table_args: tuple[Call, ...]
    comment: str | None


@dataclass(frozen=True)
class EnumPlan:
    variable: str
    call: Call


@dataclass(frozen=True)
class ModulePlan:
    enums: tuple[EnumPlan, ...]
    tables: tuple[TablePlan, ...]
    imports: frozenset[str] = field(default=frozenset())


# -- names -------------------------------------------------------------------------------------


def python_identifier(name: str, *, taken: set[str], prefix: str) -> str:
    """An ASCII Python identifier for ``name`` that is no keyword and not in ``taken`` (then added)."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    if not base or base[0].isdigit() or keyword.iskeyword(base) or base in _MODULE_NAMES:
        base = f"{prefix}_{base}" if base else prefix
    candidate, n = base, 2
    while candidate in taken or keyword.iskeyword(candidate):
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def class_name(table: str, *, taken: set[str]) -> str:
    """A CamelCase ASCII class name for a table name, unique among ``taken`` (then added)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", table) if w]
    base = "".join(w[:1].upper() + w[1:] for w in words)
    if not base or base[0].isdigit() or base in _MODULE_NAMES:
        base = "Table" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}{n}", n + 1
    taken.add(candidate)
    return candidate


def escape_colons(sql: str) -> str:
    """``sql`` for ``sa.text()``: a colon would otherwise start a bind parameter."""
    return sql.replace(":", "\\:")


# -- the plan ----------------------------------------------------------------------------------


def plan_module(design: Design) -> ModulePlan:
    """What the models module contains, as constructor calls with constant arguments."""
    taken: set[str] = set()
    enum_vars: dict[str, str] = {}
    enums: list[EnumPlan] = []
    for enum in design.enums:
        variable = python_identifier(enum.name.lower() + "_enum", taken=taken, prefix="enum")
        enum_vars[enum.name] = variable
        call = Call("postgresql.ENUM", tuple(enum.labels), (("name", enum.name), ("metadata", Ref("Base.metadata"))))
        enums.append(EnumPlan(variable, call))
    classes: set[str] = set(taken)
    tables = tuple(_plan_table(t, enum_vars, classes) for t in design.tables)
    imports = {"sa"}
    for plan in tables:
        for column in plan.columns:
            imports.update(m for m in ("datetime", "decimal", "uuid", "Any") if m in column.python_type)
            if "postgresql." in repr(column.args):
                imports.add("postgresql")
    if enums:
        imports.add("postgresql")
    return ModulePlan(tuple(enums), tables, frozenset(imports))


def _sql_type(ctype: ColumnType, enum_vars: dict[str, str]) -> tuple[Any, str]:
    constructor, python_type, kwargs = _SCALARS[ctype.name]
    if ctype.name == "enum":
        value: Any = Ref(enum_vars[ctype.enum or ""])
    elif ctype.name == "varchar":
        value = Call(constructor, (ctype.length,))
    elif ctype.name == "numeric" and ctype.precision is not None:
        value = Call(constructor, tuple(x for x in (ctype.precision, ctype.scale) if x is not None))
    else:
        value = Call(constructor, (), tuple(kwargs.items()))
    if ctype.array:
        return Call("postgresql.ARRAY", (value,)), f"list[{python_type}]"
    return value, python_type


def _plan_column(column: Column, attribute: str, table: Table, enum_vars: dict[str, str]) -> ColumnPlan:
    sql_type, python_type = _sql_type(column.type, enum_vars)
    args: list[Any] = [sql_type]
    if column.identity is not None:
        args.append(Call("sa.Identity", (), (("always", True),) if column.identity == "always" else ()))
    kwargs: list[tuple[str, Any]] = []
    if len(table.primary_key) == 1 and table.primary_key[0] == column.name:
        kwargs.append(("primary_key", True))
    kwargs.append(("nullable", column.nullable))
    if column.default is not None:
        sql = default_sql(column.default)
        kwargs.append(("server_default", Call("sa.text", (escape_colons(sql),)) if sql is not None
                       else str(column.default.value)))
    if column.comment is not None:
        kwargs.append(("comment", column.comment))
    if column.nullable:
        python_type += " | None"
    return ColumnPlan(attribute, python_type, column.name, tuple(args), tuple(kwargs))


def _plan_table(table: Table, enum_vars: dict[str, str], classes: set[str]) -> TablePlan:
    taken: set[str] = set()
    keys = {c.name: python_identifier(c.name, taken=taken, prefix="col") for c in table.columns}
    columns = tuple(_plan_column(c, keys[c.name], table, enum_vars) for c in table.columns)
    args: list[Call] = []
    if len(table.primary_key) > 1:
        args.append(Call("sa.PrimaryKeyConstraint", table.primary_key))
    for fk in table.foreign_keys:
        kwargs: list[tuple[str, Any]] = [("name", fk.name)] if fk.name else []
        if fk.on_delete != "no action":
            kwargs.append(("ondelete", fk.on_delete.upper()))
        if fk.on_update != "no action":
            kwargs.append(("onupdate", fk.on_update.upper()))
        kwargs.append(("link_to_name", True))
        targets = [(fk.references_table, column) for column in fk.references_columns]
        args.append(Call("sa.ForeignKeyConstraint", (list(fk.columns), targets), tuple(kwargs)))
    for unique in table.unique:
        args.append(Call("sa.UniqueConstraint", unique.columns,
                         (("name", unique.name),) if unique.name else ()))
    for check in table.checks:
        args.append(Call("sa.CheckConstraint", (escape_colons(check.expression),),
                         (("name", check.name),) if check.name else ()))
    for index in table.indexes:
        elements = tuple(
            e.column if e.column is not None else Call("sa.text", (escape_colons(e.expression or ""),))
            for e in index.elements
        )
        kwargs = [("unique", True)] if index.unique else []
        if index.method != "btree":
            kwargs.append(("postgresql_using", index.method))
        if index.where is not None:
            kwargs.append(("postgresql_where", Call("sa.text", (escape_colons(index.where),))))
        args.append(Call("sa.Index", (index.name, *elements), tuple(kwargs)))
    return TablePlan(class_name(table.name, taken=classes), table.name, columns, tuple(args), table.comment)


# -- in-process MetaData -----------------------------------------------------------------------


def build_metadata(design: Design) -> sa.MetaData:
    """The ``MetaData`` the rendered module defines, built directly from the plan."""
    plan = plan_module(design)
    metadata = sa.MetaData()
    env: dict[str, Any] = {"Base.metadata": metadata}
    for enum in plan.enums:
        env[enum.variable] = _build(enum.call, env)
    for table in plan.tables:
        columns = [
            sa.Column(c.name, *(_build(a, env) for a in c.args), **{k: _build(v, env) for k, v in c.kwargs})
            for c in table.columns
        ]
        sa.Table(table.name, metadata, *columns, *(_build(a, env) for a in table.table_args),
                 comment=table.comment)
    return metadata


def _build(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, Call):
        func = _CONSTRUCTORS[value.func]
        return func(*(_build(a, env) for a in value.args), **{k: _build(v, env) for k, v in value.kwargs})
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, list):
        return [_build(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(_build(v, env) for v in value)
    return value


def compile_ddl(metadata: sa.MetaData) -> list[str]:
    """``CREATE`` statements for ``metadata``, compiled by SQLAlchemy for PostgreSQL."""
    ddl: list[str] = []

    def capture(statement: Any, *multiparams: Any, **params: Any) -> None:
        ddl.append(str(statement.compile(dialect=engine.dialect)).strip())

    # A named paramstyle: with psycopg's, literal percent signs in DDL would come out doubled.
    engine = sa.create_mock_engine("postgresql+psycopg://", capture, paramstyle="named")
    metadata.create_all(engine, checkfirst=False)
    return _indexes_in_name_order(ddl)


def _indexes_in_name_order(ddl: list[str]) -> list[str]:
    """``ddl`` with each table's run of ``CREATE INDEX`` statements sorted: SQLAlchemy keeps a
    table's indexes in a set, and the same models must always give the same DDL."""
    out: list[str] = []
    run: list[str] = []
    for statement in [*ddl, ""]:
        if statement.startswith(("CREATE INDEX ", "CREATE UNIQUE INDEX ")):
            run.append(statement)
            continue
        out += sorted(run, key=lambda s: s.split(" INDEX ", 1)[1])
        run = []
        if statement:
            out.append(statement)
    return out


def design_ddl(design: Design) -> list[str]:
    return compile_ddl(build_metadata(design))


# -- the module text ---------------------------------------------------------------------------


def render_models(design: Design) -> str:
    """The models module for ``design``: formatted, to 100 columns."""
    plan = plan_module(design)
    count = len(plan.tables)
    lines = [
        f'"""SQLAlchemy models for {count} table{"s" if count != 1 else ""}, rendered by helios-migrate '
        'design\nfrom a checked schema description."""',
        "",
    ]
    lines += [f"import {m}" for m in ("datetime", "decimal", "uuid") if m in plan.imports]
    if "Any" in plan.imports:
        lines.append("from typing import Any")
    if len(lines) > 2:
        lines.append("")
    lines.append("import sqlalchemy as sa")
    if "postgresql" in plan.imports:
        lines.append("from sqlalchemy.dialects import postgresql")
    lines += ["from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column", "", "",
              "class Base(DeclarativeBase):", "    pass", ""]
    for enum in plan.enums:
        lines += ["", _assign(enum.variable, enum.call, 0)]
    for table in plan.tables:
        lines += ["", "", f"class {table.class_name}(Base):", f"    __tablename__ = {table.name!r}"]
        if table.table_args or table.comment is not None:
            items = [_code(a, 9, indent=8) for a in table.table_args]  # 9: the trailing comma
            if table.comment is not None:
                items.append("{" + repr("comment") + ": " + repr(table.comment) + "}")
            lines.append("    __table_args__ = (")
            lines += [f"        {item}," for item in items]
            lines.append("    )")
        lines.append("")
        for column in table.columns:
            args: list[Any] = ([column.name] if column.name != column.attribute else []) + list(column.args)
            call = Call("mapped_column", tuple(args), column.kwargs)
            head = f"    {column.attribute}: Mapped[{column.python_type}] = "
            lines.append(head + _code(call, len(head), indent=4))
    return "\n".join(lines).rstrip() + "\n"


def _assign(variable: str, call: Call, indent: int) -> str:
    head = " " * indent + f"{variable} = "
    return head + _code(call, len(head), indent=indent)


def _code(value: Any, column: int, *, indent: int | None = None) -> str:
    """``value`` as Python source starting at ``column``; calls wrap one argument a line when long."""
    base = column if indent is None else indent
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, list):
        return "[" + ", ".join(_code(v, column) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_code(v, column) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if not isinstance(value, Call):
        return repr(value)
    parts = [_code(a, 0) for a in value.args] + [f"{k}={_code(v, 0)}" for k, v in value.kwargs]
    flat = f"{value.func}(" + ", ".join(parts) + ")"
    if column + len(flat) <= LINE and "\n" not in flat:
        return flat
    pad = " " * (base + 4)
    wrapped = [_code(a, base + 4, indent=base + 4) for a in value.args]
    wrapped += [f"{k}={_code(v, base + 5 + len(k), indent=base + 4)}" for k, v in value.kwargs]
    return f"{value.func}(\n" + "".join(f"{pad}{p},\n" for p in wrapped) + " " * base + ")"
