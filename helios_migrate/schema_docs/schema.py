"""The tables as the docs show them, built from the objects the diff catalog reads.

Every list is sorted (columns by their position in the table, the rest by name), so the same
schema always gives the same pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diff.catalog import SchemaObject, SchemaObjects
from ..sql_parse import constraint_from_definition
from .extras import Extras, TableSize


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: str | None
    identity: str | None
    generated: str | None
    comment: str | None


@dataclass(frozen=True)
class Constraint:
    name: str
    type: str
    """``primary key``, ``unique``, ``check``, ``foreign key``, ``exclusion``."""
    definition: str
    validated: bool


@dataclass(frozen=True)
class Index:
    name: str
    definition: str
    """``[UNIQUE ]ON table USING method (...) [INCLUDE (...)] [WHERE ...]``, as PostgreSQL prints it."""
    valid: bool


@dataclass(frozen=True)
class Trigger:
    name: str
    definition: str
    """``CREATE TRIGGER ...`` as ``pg_get_triggerdef`` prints it."""
    enabled: str


@dataclass(frozen=True)
class Policy:
    name: str
    permissive: str
    command: str
    roles: tuple[str, ...]
    using: str | None
    with_check: str | None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    references: str
    """The qualified table referenced."""
    referenced_columns: tuple[str, ...]
    definition: str


@dataclass(frozen=True)
class Table:
    name: str
    """Qualified: ``public.orders``."""
    schema: str
    short: str
    kind: str
    """``ordinary`` or ``partitioned``."""
    comment: str | None
    columns: tuple[Column, ...]
    constraints: tuple[Constraint, ...]
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    size: TableSize | None
    triggers: tuple[Trigger, ...] = ()
    row_security: tuple[bool, bool] | None = None
    """``(enabled, forced)`` when row-level security is on."""
    policies: tuple[Policy, ...] = ()

    @property
    def primary_key(self) -> tuple[str, ...]:
        for k in self.constraints:
            if k.type == "primary key":
                return _column_list(k.definition)
        return ()

    def unique_columns(self) -> set[str]:
        """Columns that alone are unique (a one-column UNIQUE constraint)."""
        out: set[str] = set()
        for k in self.constraints:
            if k.type == "unique":
                cols = _column_list(k.definition)
                if len(cols) == 1:
                    out.add(cols[0])
        return out


@dataclass(frozen=True)
class Schema:
    tables: tuple[Table, ...]
    enums: tuple[tuple[str, tuple[str, ...]], ...]
    views: tuple[tuple[str, str], ...]
    """``(name, kind)``: ``plain`` or ``materialized``."""
    server_version_num: int | None
    functions: tuple[tuple[str, str, str, str], ...] = ()
    """``(name with its arguments, kind, returns, language)``."""
    extensions: tuple[tuple[str, str, str], ...] = ()
    """``(name, version, schema)``."""

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def referencing(self, name: str) -> list[ForeignKey]:
        """Foreign keys of other tables (and of the table itself) that reference ``name``."""
        return sorted(
            (fk for t in self.tables for fk in t.foreign_keys if fk.references == name),
            key=lambda fk: (fk.table, fk.name),
        )


def _column_list(definition: str) -> tuple[str, ...]:
    """The columns of ``PRIMARY KEY (a, b)`` / ``UNIQUE (a)`` (``UNIQUE NULLS NOT DISTINCT (a)``)."""
    constraint = constraint_from_definition(definition)
    return constraint.columns if constraint is not None else ()


def foreign_key(table: str, schema: str, name: str, definition: str, known: set[str]) -> ForeignKey | None:
    """The foreign key ``pg_get_constraintdef`` printed; a referenced table printed without its
    schema (it is on the search path) is looked up in the table's own schema, then in ``public``."""
    constraint = constraint_from_definition(definition)
    if constraint is None or constraint.references is None:
        return None
    ref_schema, ref_table = constraint.references.table.schema, constraint.references.table.name
    if ref_schema is None:
        candidates = [f"{schema}.{ref_table}", f"public.{ref_table}"]
        target = next((c for c in candidates if c in known), candidates[0])
    else:
        target = f"{ref_schema}.{ref_table}"
    return ForeignKey(name, table, constraint.columns, target, constraint.references.columns, definition)


def build_schema(objects: SchemaObjects, extras: Extras) -> Schema:
    """The documented schema of ``objects`` (the diff catalog's reading) and ``extras``."""
    by_kind: dict[str, list[SchemaObject]] = {}
    for obj in objects.objects.values():
        by_kind.setdefault(obj.kind, []).append(obj)
    table_objects = sorted(by_kind.get("table", []), key=lambda o: o.name)
    known = {o.name for o in table_objects}
    comments = {
        (str(o.on), ".".join(o.parts)): str(o.attribute("text")) for o in by_kind.get("comment", [])
    }
    rls = {o.name: (bool(o.attribute("enabled")), bool(o.attribute("forced"))) for o in by_kind.get("rls", [])}
    tables = []
    for t in table_objects:
        schema, short = t.parts if len(t.parts) == 2 else ("public", t.name)
        columns = sorted(
            (o for o in by_kind.get("column", []) if o.table == t.name),
            key=lambda o: (extras.positions.get(o.name, 1 << 30), o.name),
        )
        constraints = sorted(
            (o for o in by_kind.get("constraint", []) if o.table == t.name), key=lambda o: o.parts[-1]
        )
        indexes = sorted((o for o in by_kind.get("index", []) if o.table == t.name), key=lambda o: o.parts[-1])
        fks = [
            fk for k in constraints if k.attribute("type") == "foreign key"
            if (fk := foreign_key(t.name, schema, k.parts[-1], str(k.attribute("definition")), known)) is not None
        ]
        tables.append(Table(
            name=t.name, schema=schema, short=short, kind=str(t.attribute("kind") or "ordinary"),
            comment=comments.get(("table", t.name)),
            columns=tuple(
                Column(
                    c.parts[-1], str(c.attribute("type")), bool(c.attribute("nullable")),
                    c.attribute("default"), c.attribute("identity"), c.attribute("generated"),
                    comments.get(("column", c.name)),
                )
                for c in columns
            ),
            constraints=tuple(
                Constraint(k.parts[-1], str(k.attribute("type")), str(k.attribute("definition")),
                           bool(k.attribute("validated")))
                for k in constraints
            ),
            indexes=tuple(
                Index(i.parts[-1], str(i.attribute("definition")), bool(i.attribute("valid"))) for i in indexes
            ),
            foreign_keys=tuple(fks),
            size=extras.sizes.get(t.name),
            triggers=tuple(
                Trigger(o.parts[-1], str(o.attribute("definition")), str(o.attribute("enabled")))
                for o in sorted(by_kind.get("trigger", []), key=lambda o: o.name) if o.table == t.name
            ),
            row_security=rls.get(t.name),
            policies=tuple(
                Policy(o.parts[-1], str(o.attribute("as")), str(o.attribute("command")),
                       tuple(o.attribute("roles") or ()), o.attribute("using"), o.attribute("with_check"))
                for o in sorted(by_kind.get("policy", []), key=lambda o: o.name) if o.table == t.name
            ),
        ))
    enums = tuple(sorted((o.name, tuple(o.attribute("values") or ())) for o in by_kind.get("enum", [])))
    views = tuple(sorted((o.name, str(o.attribute("kind"))) for o in by_kind.get("view", [])))
    functions = tuple(sorted(
        (o.name, str(o.attribute("kind")), str(o.attribute("returns") or ""), str(o.attribute("language")))
        for o in by_kind.get("function", [])
    ))
    extensions = tuple(sorted(
        (o.name, str(o.attribute("version")), str(o.attribute("schema"))) for o in by_kind.get("extension", [])
        if o.name != "plpgsql"  # in every database since PostgreSQL 9.0: not worth a line
    ))
    return Schema(tuple(tables), enums, views, objects.server_version_num, functions, extensions)
