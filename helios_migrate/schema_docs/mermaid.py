"""Mermaid ``erDiagram`` blocks (GitHub renders them in Markdown).

Entity names keep to the characters Mermaid accepts unquoted (letters, digits, ``_``, ``-``):
a table in ``public`` is its bare name, another schema's table ``schema__table``.  Attribute
types are shortened to one word (``varchar``, ``timestamptz``, ``numeric``); the table's page
shows the full type.  A relationship runs from the referenced table to the referencing one, with
``|o`` on the referenced side when the foreign key's columns may be NULL, and ``o|`` on the
referencing side when they are unique (one-to-one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .schema import ForeignKey, Schema, Table

_SHORT_TYPES = (
    ("character varying", "varchar"),
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"),
    ("time without time zone", "time"),
    ("double precision", "float8"),
    ("bit varying", "varbit"),
    ("character", "char"),
)


def entity(table_name: str) -> str:
    schema, _, short = table_name.partition(".")
    name = short if schema == "public" else f"{schema}__{short}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def attribute_type(pg_type: str) -> str:
    text = pg_type
    array = text.endswith("[]")
    text = text.removesuffix("[]")
    text = re.sub(r"\(.*?\)", "", text).strip()
    for long, short in _SHORT_TYPES:
        if text == long:
            text = short
    text = re.sub(r"[^A-Za-z0-9_]", "_", text.split(".")[-1]) or "unknown"
    return f"{text}_array" if array else text


def _attribute_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def _entity_block(table: Table, *, keys_only: bool = False) -> list[str]:
    pk = set(table.primary_key)
    fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
    unique = table.unique_columns()
    lines = [f"    {entity(table.name)} {{"]
    for col in table.columns:
        marks = [m for m, on in (("PK", col.name in pk), ("FK", col.name in fk_columns),
                                 ("UK", col.name in unique and col.name not in pk)) if on]
        if keys_only and not marks:
            continue
        mark = f" {', '.join(marks)}" if marks else ""
        lines.append(f"        {attribute_type(col.type)} {_attribute_name(col.name)}{mark}")
    lines.append("    }")
    return lines


def _relationship(fk: ForeignKey, schema: Schema) -> str:
    child = schema.table(fk.table)
    nullable = child is not None and any(
        c.nullable for c in child.columns if c.name in fk.columns
    )
    one_to_one = child is not None and (
        (len(fk.columns) == 1 and fk.columns[0] in child.unique_columns())
        or tuple(sorted(fk.columns)) == tuple(sorted(child.primary_key))
    )
    parent_side = "|o" if nullable else "||"
    child_side = "o|" if one_to_one else "o{"
    label = ", ".join(fk.columns).replace('"', "'")
    return f'    {entity(fk.references)} {parent_side}--{child_side} {entity(fk.table)} : "{label}"'


def er_diagram(schema: Schema, tables: Iterable[Table] | None = None, *, focus: str | None = None) -> str:
    """An ``erDiagram`` of ``tables`` (all by default) and the foreign keys between them; with
    ``focus``, that table in full, its neighbours with their key columns only."""
    shown = list(tables if tables is not None else schema.tables)
    names = {t.name for t in shown}
    lines = ["erDiagram"]
    for t in shown:
        lines += _entity_block(t, keys_only=focus is not None and t.name != focus)
    relations = sorted(
        {_relationship(fk, schema) for t in shown for fk in t.foreign_keys
         if fk.references in names and fk.table in names
         and (focus is None or focus in (fk.table, fk.references))}
    )
    lines += relations
    return "\n".join(lines) + "\n"


def neighbours(schema: Schema, table: Table) -> list[Table]:
    """``table``, then the tables it references and the tables referencing it, by name."""
    names = {fk.references for fk in table.foreign_keys} | {fk.table for fk in schema.referencing(table.name)}
    names.discard(table.name)
    return [table, *(t for t in schema.tables if t.name in names)]
