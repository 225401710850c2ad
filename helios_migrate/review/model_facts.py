"""What a review of the models reads beyond the schema: the enum types the columns use."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def enum_types_of_metadata(metadata: Any) -> dict[str, tuple[str, ...]]:
    """Native enum types of the models' columns by name (and ``schema.name``), with their labels."""
    out: dict[str, tuple[str, ...]] = {}
    for table in metadata.tables.values():
        for column in table.columns:
            type_ = column.type
            if not isinstance(type_, sa.Enum) or not type_.native_enum or not type_.name:
                continue
            labels = tuple(str(label) for label in type_.enums)
            out.setdefault(type_.name, labels)
            if type_.schema:
                out.setdefault(f"{type_.schema}.{type_.name}", labels)
    return out
