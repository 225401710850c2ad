"""Columns a statement defines, for the schema design rules."""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import (
    AddColumn,
    AlterColumnType,
    Change,
    ColumnDef,
    ConstraintKind,
    CreateTable,
    QualifiedName,
)

COLUMN_DEFINING_CHANGES = (CreateTable, AddColumn, AlterColumnType)
"""The change kinds :func:`defined_columns` reads (a rule's ``CHANGES``)."""


def defined_columns(change: Change) -> Iterator[tuple[QualifiedName, str, str, bool]]:
    """(table, column, type, is primary key) for every column ``change`` creates or retypes."""
    if isinstance(change, CreateTable):
        pk_columns = {
            col for k in change.constraints if k.kind is ConstraintKind.PRIMARY_KEY for col in k.columns
        }
        for col in change.columns:
            yield change.on, col.name, col.type, col.primary_key or col.name in pk_columns
    elif isinstance(change, AddColumn):
        added: ColumnDef = change.column
        yield change.on, added.name, added.type, added.primary_key
    elif isinstance(change, AlterColumnType):
        yield change.on, change.column, change.new_type, False
