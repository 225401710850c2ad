"""Two sides' objects compared: what SOURCE has and TARGET lacks (missing), what TARGET has and
SOURCE lacks (extra), and what both have with different attributes (different)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .catalog import SchemaObject, SchemaObjects

KINDS = (
    "extension", "table", "column", "constraint", "index", "sequence", "enum", "view", "function", "trigger",
    "rls", "policy", "comment", "grant", "owner",
)
"""Object kinds in report order (an ignore pattern may name one: ``index:*_hypo*``)."""


class Status(str, Enum):
    MISSING = "missing"
    """In SOURCE, not in TARGET."""
    EXTRA = "extra"
    """In TARGET, not in SOURCE."""
    DIFFERENT = "different"


@dataclass(frozen=True)
class AttributeChange:
    attribute: str
    source: Any
    target: Any


@dataclass(frozen=True)
class Difference:
    status: Status
    kind: str
    name: str
    source: SchemaObject | None
    target: SchemaObject | None
    changes: tuple[AttributeChange, ...] = ()
    members: tuple[SchemaObject, ...] = ()
    """For a missing or extra table: its columns, constraints and indexes (not reported apart)."""


@dataclass(frozen=True)
class DiffResult:
    source: str
    target: str
    differences: tuple[Difference, ...]
    ignored: int
    """Differences left out by ignore patterns."""
    target_version_num: int | None = None
    """``server_version_num`` of the server TARGET was read on (the plan follows it)."""
    not_compared: tuple[tuple[str, str], ...] = ()
    """Object kinds left out because a side cannot describe them, each with the reason."""

    @property
    def differ(self) -> bool:
        return bool(self.differences)


def matches(pattern: str, obj: SchemaObject) -> bool:
    """Does ``pattern`` (``[kind:]glob``) name ``obj``, or the table it belongs to?  The glob is
    matched against the qualified name and, for names in the ``public`` schema, the name without it."""
    kind, sep, glob = pattern.partition(":")
    if sep and kind in KINDS:
        if obj.kind != kind:
            return False
        names = [obj.name]
    else:
        glob = pattern
        names = [obj.name, *([obj.table] if obj.table else [])]
    for name in names:
        candidates = [name, name[len("public."):]] if name.startswith("public.") else [name]
        if any(fnmatch.fnmatchcase(c, glob) for c in candidates):
            return True
    return False


def _holder(obj: SchemaObject) -> str:
    """The key of the object a grant or owner is on."""
    on = obj.on or ""
    if on in ("function", "procedure") and len(obj.parts) == 3:
        return f"function:{obj.parts[0]}.{obj.parts[1]}({obj.parts[2]})"
    kind = "view" if on in ("view", "materialized view") else on
    return f"{kind}:{'.'.join(obj.parts)}"


def compare(source: SchemaObjects, target: SchemaObjects, ignore: Sequence[str] = ()) -> DiffResult:
    """The differences between ``source`` and ``target``; an object of a table that is itself
    missing or extra is not repeated (the table stands for its columns, constraints and indexes).
    A kind either side cannot describe (:attr:`SchemaObjects.not_described`) is not compared."""
    skipped = dict([*target.not_described, *source.not_described])
    found: list[Difference] = []
    for key in sorted(set(source.objects) | set(target.objects)):
        mine, theirs = source.objects.get(key), target.objects.get(key)
        either = mine or theirs
        if either is not None and either.kind in skipped:
            continue
        if mine is not None and theirs is None:
            found.append(Difference(Status.MISSING, mine.kind, mine.name, mine, None))
        elif theirs is not None and mine is None:
            found.append(Difference(Status.EXTRA, theirs.kind, theirs.name, None, theirs))
        elif mine is not None and theirs is not None and mine.attributes != theirs.attributes:
            a, b = dict(mine.attributes), dict(theirs.attributes)
            changes = tuple(
                AttributeChange(name, a.get(name), b.get(name))
                for name in dict.fromkeys([*a, *b]) if a.get(name) != b.get(name)
            )
            found.append(Difference(Status.DIFFERENT, mine.kind, mine.name, mine, theirs, changes))
    whole_tables = {(d.status, d.name) for d in found if d.kind == "table" and d.status is not Status.DIFFERENT}
    whole = {(d.status, f"{d.kind}:{d.name}") for d in found if d.status is not Status.DIFFERENT}
    members: dict[tuple[Status, str], list[SchemaObject]] = {}
    for status, side in ((Status.MISSING, source), (Status.EXTRA, target)):
        for member in side.objects.values():  # in catalog order: columns by position
            if member.table and (status, member.table) in whole_tables and member.kind in (
                "column", "constraint", "index"
            ):
                members.setdefault((status, member.table), []).append(member)
    kept: list[Difference] = []
    ignored = 0
    for d in found:
        obj = d.source or d.target
        assert obj is not None
        if obj.table and (d.status, obj.table) in whole_tables:
            continue
        if d.kind == "table" and (d.status, d.name) in members:
            d = dataclasses.replace(d, members=tuple(members[(d.status, d.name)]))
        if d.kind in ("grant", "owner") and (d.status, _holder(obj)) in whole:
            continue  # a missing or extra function, view or sequence stands for its owner and grants
        if any(matches(p, obj) for p in ignore):
            ignored += 1
            continue
        kept.append(d)
    kept.sort(key=lambda d: (KINDS.index(d.kind), d.name))
    not_compared = tuple(sorted(skipped.items(), key=lambda kv: KINDS.index(kv[0]) if kv[0] in KINDS else 99))
    return DiffResult(source.label, target.label, tuple(kept), ignored, target.server_version_num, not_compared)
