"""Impact estimates for a plan: per step, what it locks and blocks, how much it touches, how long
it takes, the disk and WAL it needs, what it may wait for, and a risk level with the reasons.

The API other parts of helios-migrate build on:

* :func:`estimate_plan` ``(plan, facts, version) -> PlanImpact`` -- ``facts`` from
  :func:`helios_migrate.facts.collect_facts` (``None`` offline: locks and work classes only);
* :func:`tables_of_plan` -- the tables to collect facts for;
* :func:`render_revision_header` (alias :func:`render_header`) -- a compact comment table, one row
  per step, for the header of a revision file;
* :func:`render_table` (rich), :func:`to_json`, :func:`to_markdown`.

The duration model is ``fixed cost + bytes / throughput`` for the step's work class, with the
throughput from :mod:`helios_migrate.calibration`; ``docs/impact.md`` documents it.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import changes as c
from .calibration import (
    DEFAULT_SORT_ROW_S,
    MODEL,
    KeyKind,
    ModelConstants,
    Throughput,
    default_throughput,
)
from .changes import Change, ConstraintKind, QualifiedName
from .effects import Effect, RelationLock, RelationRole, WorkClass
from .facts import DatabaseFacts, IndexFacts, SessionFacts, TableFacts, format_bytes, format_seconds
from .knowledge import SchemaLookup, effect_of
from .locks import Blocked, LockMode, strongest_per_relation
from .plan import Plan, Step, TransactionMode
from .sqltext import index_element_name
from .versions import PgVersion

OLD_TRANSACTION_S = 60.0
"""A transaction open longer than this makes concurrent index builds wait; it is named."""
HOT_TABLE_WRITES_PER_S = 50.0
"""Above this write rate, a queued ACCESS EXCLUSIVE request stalls a noticeable number of writes."""


class RiskLevel(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


def _max_risk(levels: Iterable[RiskLevel]) -> RiskLevel:
    return max(levels, key=lambda r: r.rank, default=RiskLevel.LOW)


@dataclass(frozen=True)
class DurationRange:
    low_s: float
    expected_s: float
    high_s: float

    def __str__(self) -> str:
        return format_range(self.low_s, self.high_s)


def format_range(low: float, high: float) -> str:
    if high < 0.01:
        return "<10 ms"
    lo, hi = format_seconds(low), format_seconds(high)
    if lo == hi:
        return lo
    lo_num, _, lo_unit = lo.partition(" ")
    _hi_num, _, hi_unit = hi.partition(" ")
    return f"{lo_num}-{hi}" if lo_unit == hi_unit else f"{lo}-{hi}"


@dataclass(frozen=True)
class Reason:
    level: RiskLevel
    text: str


@dataclass(frozen=True)
class StepImpact:
    number: int
    step: Step
    table: QualifiedName | None
    lock: LockMode | None
    blocks: Blocked
    """What the step's strongest blocking lock makes wait."""
    work: WorkClass
    rows: int | None = None
    bytes: int | None = None
    """Bytes read or written by the work (heap, TOAST and index as the work class needs)."""
    duration: DurationRange | None = None
    extra_disk_bytes: int = 0
    wal_bytes: int = 0
    lock_wait: tuple[str, ...] = ()
    risk: RiskLevel = RiskLevel.LOW
    reasons: tuple[Reason, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return self.step.description


@dataclass(frozen=True)
class PlanImpact:
    steps: tuple[StepImpact, ...]
    version: PgVersion
    live: bool
    """Facts came from a live database (sizes, sessions); False: locks and work classes only."""
    throughput: Throughput
    notes: tuple[str, ...] = ()
    """Plan-wide observations: stale statistics, invalid indexes, tables not found."""
    server: str = ""

    @property
    def risk(self) -> RiskLevel:
        return _max_risk(s.risk for s in self.steps)

    @property
    def duration(self) -> DurationRange | None:
        known = [s.duration for s in self.steps if s.duration is not None]
        if not known:
            return None
        return DurationRange(sum(d.low_s for d in known), sum(d.expected_s for d in known),
                             sum(d.high_s for d in known))


# --- estimating -------------------------------------------------------------------------------


def tables_of_plan(plan: Plan) -> list[QualifiedName]:
    """Every table a plan's steps touch (their own tables and referenced ones), in order."""
    out: list[QualifiedName] = []
    for step in plan.steps:
        for ch in step.changes:
            out.extend(_tables_of_change(ch))
        if step.backfill is not None:
            out.append(step.backfill.table)
    return list(dict.fromkeys(out))


def _tables_of_change(ch: Change) -> list[QualifiedName]:
    out = [ch.table] if ch.table is not None else []
    if isinstance(ch, c.AddConstraint) and ch.constraint.references is not None:
        out.append(ch.constraint.references.table)
    if isinstance(ch, c.AttachPartition | c.DetachPartition):
        out.append(ch.partition)
    if isinstance(ch, c.Reindex) and ch.target is c.ReindexTarget.INDEX:
        pass
    if isinstance(ch, c.RawStatement):
        out.extend(ch.relations)
    return out


@dataclass
class _Work:
    rows: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    extra_disk: int = 0
    wal: int = 0
    notes: list[str] = field(default_factory=list)


_WORK_ORDER = {
    WorkClass.METADATA: 0,
    WorkClass.ROW_WRITES: 1,
    WorkClass.SCAN: 2,
    WorkClass.INDEX_BUILD: 3,
    WorkClass.REWRITE: 4,
    WorkClass.UNKNOWN: 5,
}


def estimate_plan(
    plan: Plan,
    facts: DatabaseFacts | None,
    version: PgVersion | None = None,
    *,
    throughput: Throughput | None = None,
    catalog: SchemaLookup | None = None,
    model: ModelConstants = MODEL,
) -> PlanImpact:
    """Estimate every step of ``plan``.  ``version`` defaults to the facts' server version."""
    if version is None:
        if facts is None:
            raise ValueError("estimate_plan needs a version when no facts are given")
        version = facts.version
    tp = throughput or default_throughput()
    created: set[str] = set()
    steps = []
    for number, step in enumerate(plan.steps, start=1):
        steps.append(_estimate_step(number, step, facts, version, tp, catalog, model, created))
        for ch in step.changes:
            if isinstance(ch, c.CreateTable):
                created.add(ch.on.name)
    notes: list[str] = []
    if facts is not None:
        for table in (facts.table(t) for t in tables_of_plan(plan)):
            if table is None:
                continue
            stale = table.stale_statistics
            if stale:
                notes.append(stale)
            for index in table.invalid_indexes:
                notes.append(
                    f"invalid index {index.name} on {table.name} (left by a failed CREATE INDEX "
                    f"CONCURRENTLY?): it slows writes and is never used; drop it with "
                    f"DROP INDEX CONCURRENTLY {index.name}"
                )
    server = ""
    if facts is not None:
        server = f"PostgreSQL {facts.version} ({facts.server.database})"
    return PlanImpact(tuple(steps), version, facts is not None, tp, tuple(dict.fromkeys(notes)), server)


def estimate_step(
    step: Step,
    facts: DatabaseFacts | None,
    version: PgVersion,
    *,
    throughput: Throughput | None = None,
    catalog: SchemaLookup | None = None,
    model: ModelConstants = MODEL,
    number: int = 1,
) -> StepImpact:
    return _estimate_step(number, step, facts, version, throughput or default_throughput(), catalog,
                          model, set())


def _estimate_step(
    number: int,
    step: Step,
    facts: DatabaseFacts | None,
    version: PgVersion,
    tp: Throughput,
    catalog: SchemaLookup | None,
    model: ModelConstants,
    created: set[str],
) -> StepImpact:
    effects = [effect_of(ch, version, catalog) for ch in step.changes]
    if step.backfill is not None and not any(e.work is WorkClass.ROW_WRITES for e in effects):
        effects.append(
            effect_of(c.ModifyRows(step.backfill.table, c.DataOperation.UPDATE, True,
                                   (step.backfill.column,)), version, catalog)
        )
    table = next((e.change.table for e in effects if e.change.table is not None), None)
    if table is None and step.backfill is not None:
        table = step.backfill.table
    lock = max((lk.mode for e in effects for lk in e.locks if lk.blocking), default=None)
    if lock is None:
        lock = max((lk.mode for e in effects for lk in e.locks), default=None)
    blocks = _blocked(effects)
    work = max((e.work for e in effects), key=lambda w: _WORK_ORDER[w], default=WorkClass.METADATA)

    total = _Work(rows=None, bytes=None, seconds=0.0)
    for eff in effects:
        w = _work_of(eff, step, facts, tp, model, created)
        total.notes.extend(w.notes)
        if w.rows is not None:
            total.rows = max(total.rows or 0, w.rows)
        if w.bytes is not None:
            total.bytes = (total.bytes or 0) + w.bytes
        if w.seconds is None or total.seconds is None:
            total.seconds = None
        else:
            total.seconds += w.seconds
        total.extra_disk += w.extra_disk
        total.wal += w.wal
    if not effects:
        total.seconds = model.metadata_s
    checkpoints = _checkpoint_note(total.wal, facts)
    if checkpoints:
        total.notes.append(checkpoints)
    duration = None
    if total.seconds is not None:
        s = total.seconds
        fixed = model.metadata_s if work is WorkClass.METADATA else 0.0
        duration = DurationRange(max(fixed / 2, s * model.low_factor), s, s * model.high_factor)

    if facts is not None and table is not None:
        resolved = facts.table(table)
        table = resolved.name if resolved is not None else table
    reasons, waits = _risks(step, effects, table, lock, work, duration, total, facts)
    return StepImpact(
        number, step, table, lock, blocks, work, total.rows, total.bytes, duration,
        total.extra_disk, total.wal, tuple(waits),
        _max_risk(r.level for r in reasons), tuple(reasons), tuple(dict.fromkeys(total.notes)),
    )


def _blocking_locks(effects: Sequence[Effect]) -> list[RelationLock]:
    """Locks that make other sessions wait (not those on relations no one else can see yet, nor
    on types)."""
    return [lk for e in effects for lk in e.locks if lk.blocking and lk.role is not RelationRole.TYPE]


def _blocked(effects: Sequence[Effect]) -> Blocked:
    blocking = _blocking_locks(effects)
    return max(lk.mode for lk in blocking).blocked if blocking else Blocked.NOTHING


def _index_entry_bytes(width: float) -> float:
    # IndexTupleData (8) + key aligned to 8, plus the 4-byte line pointer; leaf pages 90% full.
    return (8 + math.ceil(max(width, 1) / 8) * 8 + 4) / 0.9


def _column_width(table: TableFacts, name: str | None) -> float:
    facts = table.column(name) if name else None
    return float(facts.avg_width) if facts and facts.avg_width else 8.0


PRESORTED_CORRELATION = 0.99
"""A key column whose ``pg_stats.correlation`` exceeds this is sorted as already in order."""
_COLLATED_TYPES = ("text", "character varying", "character", "varchar", "char", "citext")
_TOASTABLE_TYPES = ("json", "jsonb", "text", "bytea", "xml", "character varying", "tsvector")
_BYTEWISE = re.compile(r'COLLATE\s+"?(C|POSIX)"?(\s|\)|$)', re.IGNORECASE)
_FIXED_CAST = re.compile(
    r"::\s*(small|big)?int(eger)?[248]?\b|::\s*(numeric|date|timestamp|timestamptz|uuid|boolean|float[48]|"
    r"double precision|real|oid)\b|\b(length|octet_length|char_length|extract|date_trunc|abs)\s*\(",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Key:
    """One index key as the sort sees it."""

    kind: KeyKind
    width: float
    presorted: bool = False
    """The heap already holds the rows in this key's order (``pg_stats.correlation`` near 1):
    the sort finds its input sorted in one pass."""


def _key_of(table: TableFacts, key: str, bytewise: bool = False) -> _Key:
    """The kind and width of an index key (a column name or an expression's text)."""
    name = index_element_name(key) or key
    col = table.column(name)
    if col is not None:
        collated = col.type.split("(")[0] in _COLLATED_TYPES
        presorted = col.correlation is not None and col.correlation > PRESORTED_CORRELATION
        if not collated:
            return _Key(KeyKind.FIXED, _column_width(table, name), presorted)
        text_kind = KeyKind.TEXT_BYTEWISE if bytewise or col.bytewise or _BYTEWISE.search(key) else KeyKind.TEXT
        return _Key(text_kind, _column_width(table, name), presorted)
    # An expression: a cast to (or a function returning) a fixed-width type sorts as fixed-width;
    # otherwise as text of the widest collated column it uses.
    if _FIXED_CAST.search(key):
        return _Key(KeyKind.FIXED, 8.0)
    used = [cf for cf in table.columns if re.search(rf"\b{re.escape(cf.name)}\b", key)]
    texts = [cf for cf in used if cf.type.split("(")[0] in _COLLATED_TYPES]
    if texts:
        bytewise = bytewise or all(cf.bytewise for cf in texts) or bool(_BYTEWISE.search(key))
        kind = KeyKind.TEXT_BYTEWISE if bytewise else KeyKind.TEXT
        return _Key(kind, max(float(cf.avg_width or 8) for cf in texts))
    return _Key(KeyKind.FIXED, 8.0)


def _new_index_bytes(table: TableFacts, keys: Sequence[_Key], plain: Sequence[str | None], rows: float,
                     unique: bool) -> int:
    """The size of a new btree: one entry per row, except that a non-unique single-column index
    stores each distinct value once followed by a 6-byte heap pointer per row (deduplication,
    PostgreSQL 13+), when ``pg_stats.n_distinct`` says values repeat."""
    width = sum(k.width for k in keys) or 8.0
    entry = _index_entry_bytes(width)
    if not unique and len(plain) == 1 and plain[0] is not None:
        col = table.column(plain[0])
        if col is not None and col.n_distinct is not None and col.n_distinct != 0:
            distinct = col.n_distinct if col.n_distinct > 0 else -col.n_distinct * rows
            if distinct < rows / 2:
                return int(distinct * entry + rows * 6 / 0.9)
    return int(rows * entry)


def _index_build_s(table: TableFacts, keys: Sequence[_Key], rows: float, index_bytes: float,
                   tp: Throughput, model: ModelConstants) -> float:
    """Scan the heap, sort the keys (calibrated per key kind), form and write the index."""
    if not keys:
        keys = (_Key(KeyKind.FIXED, 8.0),)
    first = keys[0]
    sort = tp.sort_s(first.kind, rows, width=first.width) * (1 + model.extra_key_factor * (len(keys) - 1))
    if first.presorted:
        # PostgreSQL's quicksort checks for sorted input first: one comparison per row.
        sort /= math.log2(max(rows, 2.0))
    fixed_row = _fixed_sort_row_s(tp)
    return (table.heap_bytes / (tp.scan_bps * model.index_scan_ratio) + sort
            + rows * fixed_row * model.index_row_sorts + index_bytes / (tp.scan_bps * model.index_write_ratio))


def _rebuild_s(table: TableFacts, index: IndexFacts, bytewise: bool, tp: Throughput,
               model: ModelConstants) -> float:
    """Rebuilding an existing index: a partial one sorts only its own entries, as many as its
    size holds."""
    keys = _existing_index_keys(table, index, bytewise)
    rows: float = table.row_estimate
    if index.predicate is not None:
        width = sum(k.width for k in keys) or 8.0
        rows = min(rows, index.size_bytes / _index_entry_bytes(width))
    return _index_build_s(table, keys, rows, index.size_bytes, tp, model)


def _fixed_sort_row_s(tp: Throughput) -> float:
    """The calibrated cost of sorting one fixed-width key: the model's measure of CPU speed."""
    return tp.sort_row_s.get(KeyKind.FIXED.value, DEFAULT_SORT_ROW_S[KeyKind.FIXED])


def _existing_index_keys(table: TableFacts, index: IndexFacts, bytewise: bool) -> list[_Key]:
    return [_key_of(table, key, bytewise) for key in index.keys or index.columns]


_COMPARISON = re.compile(
    r"""^\(*\s*"?(?P<col>[A-Za-z_][A-Za-z0-9_$ ]*?)"?\s*(?:
        (?P<eq>=|<>|!=)\s*(?P<value>'(?:[^']|'')*'|-?[0-9.]+|true|false)(?:\s*::\s*[a-z ]+)?
      | IS\s+(?P<not>NOT\s+)?NULL
    )\s*\)*$""",
    re.IGNORECASE | re.VERBOSE,
)


def predicate_selectivity(table: TableFacts, predicate: str | None) -> float | None:
    """The share of rows a partial index's predicate keeps, from ``pg_stats`` (null fraction and
    most common values), for ``col = const``, ``col <> const``, ``col IS [NOT] NULL`` and those
    joined by AND; ``None`` when the form or the statistics are not known."""
    if not predicate:
        return 1.0
    share = 1.0
    for part in re.split(r"\s+AND\s+", predicate.strip(), flags=re.IGNORECASE):
        m = _COMPARISON.match(part.strip())
        if m is None:
            return None
        col = table.column(m.group("col"))
        if col is None or col.null_frac is None:
            return None
        if m.group("eq") is None:
            share *= (1.0 - col.null_frac) if m.group("not") else col.null_frac
            continue
        raw = m.group("value")
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        freq = next((f for v, f in col.most_common if v == value), None)
        if freq is None:
            if not col.most_common or col.n_distinct is None:
                return None
            # Not a common value: the rest of the rows spread over the other distinct values.
            rest = max(1.0 - col.null_frac - sum(f for _, f in col.most_common), 0.0)
            distinct = col.n_distinct if col.n_distinct > 0 else -col.n_distinct * max(table.row_estimate, 1)
            others = max(distinct - len(col.most_common), 1.0)
            freq = rest / others
        share *= freq if m.group("eq") == "=" else max(1.0 - col.null_frac - freq, 0.0)
    return share


def _size_only_uses(column: str, type_name: str) -> re.Pattern[str]:
    """Uses of ``column`` that read only its stored size, never its out-of-line value:
    ``octet_length``, ``pg_column_size`` and ``IS [NOT] NULL`` of any type, and ``length`` of
    bytea (byte count); ``length`` of text counts characters, which detoasts under a multibyte
    encoding."""
    col = rf'"?{re.escape(column)}"?'
    funcs = "octet_length|pg_column_size|length" if type_name == "bytea" else "octet_length|pg_column_size"
    return re.compile(rf"\b(?:{funcs})\s*\(\s*{col}\s*\)|\b{col}\s+IS\s+(?:NOT\s+)?NULL\b", re.IGNORECASE)


def _detoasted_bytes(ch: Change, table: TableFacts) -> int:
    """TOAST bytes an index build reads: those of a table whose TOASTable column an index
    expression uses (a plain column key is sorted from its stored form, no expression evaluated).
    A column used only through its size (``octet_length``, ``length`` of bytea) is not read:
    PostgreSQL answers from the TOAST pointer (measured: ``length(receipt)`` of a 4 kB bytea
    builds as fast as an index on an integer; ``md5(receipt)`` reads every value)."""
    if not isinstance(ch, c.CreateIndex) or not table.toast_bytes:
        return 0
    for key in ch.columns:
        if index_element_name(key) is not None:
            continue
        for col in table.columns:
            type_name = col.type.split("(")[0]
            if type_name not in _TOASTABLE_TYPES:
                continue
            rest = _size_only_uses(col.name, type_name).sub(" ", key)
            if re.search(rf"\b{re.escape(col.name)}\b", rest):
                return table.toast_bytes
    return 0


def hot_update_share(table: TableFacts, column: str, block: int) -> float:
    """The share of an UPDATE's rows that can be HOT (heap-only: no index entry written).  None
    when an index reads the column; otherwise as many new row versions as the free space left on
    each page holds (fillfactor and the rows' own widths), for the rows updated on that page."""
    if column in table.indexed_columns():
        return 0.0
    stored = table.stored_row_bytes
    if stored is None or table.pages <= 0 or table.row_estimate <= 0:
        return 0.0
    per_page = table.row_estimate / table.pages
    free = block - 24 - per_page * (stored + 4)
    if free <= 0:
        return 0.0
    fits = free // (stored + 8 + 4)
    return min(1.0, fits / per_page)


def _work_of(
    eff: Effect,
    step: Step,
    facts: DatabaseFacts | None,
    tp: Throughput,
    model: ModelConstants,
    created: set[str],
) -> _Work:
    ch = eff.change
    scan = tp.scan_bps
    if eff.work is WorkClass.METADATA:
        return _Work(seconds=model.metadata_s)
    if eff.unsupported:
        return _Work(seconds=model.metadata_s)
    name = ch.table
    if isinstance(ch, c.AttachPartition):
        name = ch.partition
    if isinstance(ch, c.Reindex) and ch.target is c.ReindexTarget.INDEX and facts is not None:
        name = next((t.name for t in facts.tables for i in t.indexes if i.name.name == ch.name.name), None)
    if name is not None and name.name in created:
        return _Work(rows=0, bytes=0, seconds=model.step_fixed_s)
    if facts is None:
        return _Work(seconds=None, notes=["no database: sizes and durations unknown (pass --database-url)"])
    table = facts.table(name)
    if table is None:
        what = str(name) if name is not None else "the table"
        return _Work(seconds=None, notes=[f"{what} not found in the database: size unknown"])
    rows, heap = table.row_estimate, table.heap_bytes
    fixed = tp.statement_s + model.step_fixed_s

    if eff.work is WorkClass.SCAN:
        ref = next((lk.relation for lk in eff.locks if lk.role is RelationRole.REFERENCED_TABLE), None)
        if ref is None and isinstance(ch, c.ValidateConstraint):
            ref = next((k.references for k in table.constraints if k.name == ch.name), None)
        ref_table = facts.table(ref) if ref is not None else None
        if _is_fk(ch, table) and ref_table is not None:
            # An anti-join: both heaps read, then a hash probe per referencing row.
            both = heap + ref_table.heap_bytes
            probes = (rows + ref_table.row_estimate) * _fixed_sort_row_s(tp) * model.fk_row_sorts
            return _Work(rows, both, fixed + both / (scan * model.validate_ratio) + probes)
        return _Work(rows, heap, fixed + heap / (scan * model.validate_ratio))

    if eff.work is WorkClass.REWRITE:
        data = heap + table.toast_bytes
        # VACUUM FULL and CLUSTER copy tuples as they are; ALTER TABLE deforms, evaluates and forms
        # every row again.  Both re-insert every out-of-line value into a new TOAST table.
        heap_ratio = model.copy_ratio if isinstance(ch, c.VacuumFull | c.Cluster) else model.rewrite_ratio
        seconds = fixed + heap / (scan * heap_ratio) + table.toast_bytes / (scan * model.toast_copy_ratio)
        for index in table.indexes:
            seconds += _rebuild_s(table, index, False, tp, model)
        written = data + table.index_bytes
        notes = []
        wal = 0 if _wal_minimal(facts) else written
        notes.append(f"rewrites {table.name}: needs {format_bytes(written)} of free disk until it commits")
        if table.toast_bytes:
            notes.append(f"copies {format_bytes(table.toast_bytes)} of out-of-line (TOAST) values into a new "
                         f"TOAST table")
        return _Work(rows, data + table.index_bytes, seconds, written, wal, notes)

    if eff.work is WorkClass.INDEX_BUILD and eff.rebuilds_indexes_only and not isinstance(ch, c.Reindex):
        # A type change that keeps the table rebuilds each named index: a heap scan and a sort each.
        rebuilt = {i.name for i in eff.rebuilt_indexes}
        found = [i for i in table.indexes if i.name.name in rebuilt]
        seconds = fixed
        size = 0
        # Under "C"/"POSIX" text keys compare bytewise.
        bytewise = isinstance(ch, c.AlterColumnType) and (ch.collation or "").upper() in {"C", "POSIX"}
        for index in found:
            seconds += _rebuild_s(table, index, bytewise, tp, model)
            size += index.size_bytes
        names = ", ".join(str(i.name) for i in found) or "its indexes"
        return _Work(rows, heap + size, seconds, size, 0 if _wal_minimal(facts) else size,
                     [f"rebuilds {names} ({format_bytes(size)}) holding the lock; the table is kept"])

    if eff.work is WorkClass.INDEX_BUILD:
        key_texts: Sequence[str] = ()
        notes_pre: list[str] = []
        concurrent = False
        unique = False
        existing: list[IndexFacts] | None = None
        if isinstance(ch, c.CreateIndex):
            key_texts = ch.columns
            concurrent = ch.concurrently
            unique = ch.unique
        elif isinstance(ch, c.AddConstraint):
            key_texts = ch.constraint.columns
            unique = True
        elif isinstance(ch, c.Reindex):
            concurrent = ch.concurrently
            if ch.target is c.ReindexTarget.INDEX:
                existing = [i for i in table.indexes if i.name.name == ch.name.name]
            else:
                existing = list(table.indexes)
        if existing is not None:
            index_bytes = sum(i.size_bytes for i in existing)
            seconds = sum(_rebuild_s(table, i, False, tp, model) for i in existing)
        else:
            keys = [_key_of(table, k) for k in key_texts]
            plain = [index_element_name(k) for k in key_texts]
            where = ch.where if isinstance(ch, c.CreateIndex) else None
            share = predicate_selectivity(table, where)
            if where and share is None:
                notes_pre.append("partial index: size and time assume every row qualifies (an upper bound)")
            elif where and share is not None:
                notes_pre.append(f"partial index: ~{share:.0%} of the rows qualify (pg_stats)")
            indexed = rows * (1.0 if share is None else share)
            index_bytes = _new_index_bytes(table, keys, plain, indexed, unique)
            seconds = _index_build_s(table, keys, indexed, index_bytes, tp, model)
        detoasted = _detoasted_bytes(ch, table)
        if detoasted:
            # An expression key on a TOASTed column reads every out-of-line value to evaluate it.
            seconds += detoasted / (scan * model.detoast_ratio)
        if concurrent:
            seconds = seconds * model.concurrent_index_factor + model.concurrent_fixed_s
        notes = notes_pre
        extra = index_bytes
        mwm = facts.server.bytes_setting("maintenance_work_mem")
        if mwm is not None and index_bytes > mwm:
            extra += index_bytes
            notes.append(
                f"sort exceeds maintenance_work_mem ({format_bytes(mwm)}): spills "
                f"~{format_bytes(index_bytes)} to temporary files"
            )
        return _Work(rows, heap + index_bytes, fixed + seconds, extra,
                     0 if _wal_minimal(facts) and not concurrent else index_bytes, notes)

    if eff.work is WorkClass.ROW_WRITES:
        notes = []
        touched = rows
        backfill = step.backfill
        pause = 0.0
        if backfill is not None:
            col = table.column(backfill.column)
            if col is not None and col.null_frac is not None and backfill.where is None:
                touched = round(rows * col.null_frac)
                notes.append(
                    f"{touched:,} of {rows:,} rows have {backfill.column} NULL (pg_stats.null_frac "
                    f"{col.null_frac:.2f})"
                )
            batches = math.ceil(touched / max(backfill.batch_size, 1))
            pause = batches * (backfill.pause_ms / 1000.0 + model.batch_overhead_s)
        elif isinstance(ch, c.ModifyRows) and ch.has_where:
            notes.append("data migration with a WHERE clause: rows assume the whole table (an upper bound)")
        per_row = table.tuple_bytes
        written = int(touched * per_row)
        # A non-HOT update adds an entry to every index; a HOT one (no indexed column changed and
        # room on the page) to none.
        updated = [backfill.column] if backfill is not None else list(getattr(ch, "columns", ()) or ())
        hot = min((hot_update_share(table, col_name, facts.server.block_size) for col_name in updated), default=0.0)
        if updated and hot > 0:
            notes.append(f"~{hot:.0%} of the updates can be HOT (no index reads {', '.join(updated)}; "
                         f"free space on the pages)")
        fixed_row = _fixed_sort_row_s(tp)
        index_entries = touched * (1.0 - hot) * len(table.indexes)
        seconds = (fixed + written / (scan * model.update_ratio)
                   + index_entries * fixed_row * model.index_insert_sorts + pause)
        index_wal = int(index_entries * _index_entry_bytes(8.0))
        return _Work(touched, written, seconds, written, written + index_wal, notes)

    return _Work(rows, heap, None, notes=["work of this statement is not modelled"])


def _is_fk(ch: Change, table: TableFacts) -> bool:
    if isinstance(ch, c.AddConstraint):
        return ch.constraint.kind is ConstraintKind.FOREIGN_KEY
    if isinstance(ch, c.ValidateConstraint):
        return any(k.name == ch.name and k.kind is ConstraintKind.FOREIGN_KEY for k in table.constraints)
    return False


def _checkpoint_note(wal: int, facts: DatabaseFacts | None) -> str | None:
    """Say so when a step writes more WAL than ``max_wal_size``: checkpoints come during it."""
    if facts is None or wal <= 0:
        return None
    setting = facts.server.settings.get("max_wal_size")
    limit = setting.bytes if setting is not None else None
    if not limit or wal <= limit:
        return None
    text = (
        f"writes ~{format_bytes(wal)} of WAL, {wal / limit:.1f} x max_wal_size ({format_bytes(limit)}): "
        "checkpoints will be requested while it runs, and each one slows the application's writes "
        "for a moment"
    )
    fpw = facts.server.settings.get("full_page_writes")
    if fpw is None or fpw.value == "on":
        text += " (the first change to each page after one is logged as a full page)"
    return text


def _wal_minimal(facts: DatabaseFacts) -> bool:
    setting = facts.server.settings.get("wal_level")
    return setting is not None and setting.value == "minimal"


# --- risk -------------------------------------------------------------------------------------


_CONCURRENT_WAITERS = (c.CreateIndex, c.Reindex, c.DetachPartition, c.DropIndex)


def _waits_for_old_snapshots(eff: Effect) -> bool:
    ch = eff.change
    return bool(getattr(ch, "concurrently", False)) and isinstance(ch, _CONCURRENT_WAITERS)


def _lock_timeout_ms(step: Step, facts: DatabaseFacts | None) -> float:
    if step.retry is not None and step.retry.lock_timeout_ms:
        return float(step.retry.lock_timeout_ms)
    if facts is not None:
        return facts.server.ms_setting("lock_timeout") or 0.0
    return 0.0


def _session_text(session: SessionFacts | None, pid: int) -> str:
    return session.describe() if session is not None else f"pid {pid}"


def _risks(
    step: Step,
    effects: Sequence[Effect],
    table: QualifiedName | None,
    lock: LockMode | None,
    work: WorkClass,
    duration: DurationRange | None,
    total: _Work,
    facts: DatabaseFacts | None,
) -> tuple[list[Reason], list[str]]:
    reasons: list[Reason] = []
    waits: list[str] = []
    blocking = _blocking_locks(effects)
    blocked = _blocked(effects)
    blocks_app = blocked.blocks_application
    blocks_reads = blocked is Blocked.READS_AND_WRITES
    timeout_ms = _lock_timeout_ms(step, facts)
    in_migration_txn = step.transaction is TransactionMode.MIGRATION

    for eff in effects:
        if eff.unsupported:
            reasons.append(Reason(RiskLevel.CRITICAL, f"the server refuses it: {eff.unsupported}"))

    # Lock held while the work runs.
    if duration is not None and blocks_app:
        what = blocked.value
        held = duration.expected_s
        critical_s = 30.0 if blocks_reads else 60.0
        text = (
            f"blocks {what} on {table or 'the table'} for ~{format_range(duration.low_s, duration.high_s)} "
            f"({work.value})"
        )
        if held >= critical_s:
            reasons.append(Reason(RiskLevel.CRITICAL, text))
        elif held >= 5:
            reasons.append(Reason(RiskLevel.HIGH, text))
        elif held >= 0.5 or (blocks_reads and held >= 0.2):
            reasons.append(Reason(RiskLevel.MEDIUM, text))
    elif duration is None and blocks_app and work is not WorkClass.METADATA:
        reasons.append(Reason(RiskLevel.MEDIUM,
                              f"blocks {blocked.value} for an unknown "
                              f"time: {work.value} of a table of unknown size"))
    elif duration is not None and duration.expected_s >= 3600:
        reasons.append(Reason(RiskLevel.MEDIUM,
                              f"runs ~{format_range(duration.low_s, duration.high_s)} without blocking the "
                              f"application: plan a window for it"))
    if work is WorkClass.UNKNOWN and blocks_app:
        reasons.append(Reason(RiskLevel.MEDIUM, "statement not modelled: its lock may be held for long"))

    if facts is None:
        return reasons, waits

    # Sessions holding conflicting locks on the tables involved.
    seen: set[tuple[int, str]] = set()
    requested = strongest_per_relation(blocking or [lk for e in effects for lk in e.locks])
    for lk in requested.values():
        for holder, session in facts.holders_on(lk.relation):
            if not holder.granted or not lk.mode.conflicts_with(holder.mode):
                continue
            key = (holder.pid, str(holder.relation))
            if key in seen:
                continue
            seen.add(key)
            who = _session_text(session, holder.pid)
            text = (
                f"{who} holds {holder.mode.sql_name} on {holder.relation}: the {lk.mode.sql_name} "
                f"request waits for it"
            )
            waits.append(text)
            if lk.mode.blocks_writes or lk.mode.blocks_reads:
                if timeout_ms > 0:
                    retries = " (each retry too)" if step.retry is not None and step.retry.attempts > 1 else ""
                    reasons.append(Reason(RiskLevel.HIGH, text + f"; lock_timeout {timeout_ms:.0f} ms makes "
                                          f"the step fail{retries} until that session ends"))
                else:
                    reasons.append(Reason(RiskLevel.CRITICAL, text + "; with no lock_timeout every "
                                          "read and write of the table queues behind the request"))
            else:
                reasons.append(Reason(RiskLevel.MEDIUM, text))

    # Old transactions: CONCURRENTLY waits for every older snapshot in the database.
    if any(_waits_for_old_snapshots(e) for e in effects):
        for session in facts.sessions:
            age = session.xact_age_s or 0.0
            if age < OLD_TRANSACTION_S and not session.idle_in_transaction:
                continue
            text = (
                f"{session.describe()}: {effects[0].change.kind.replace('_', ' ')} CONCURRENTLY waits "
                f"until this transaction ends"
            )
            waits.append(text)
            reasons.append(Reason(RiskLevel.HIGH if session.idle_in_transaction else RiskLevel.MEDIUM, text))

    # A hot table: a queued strong lock request stalls writes behind it.
    tf = facts.table(table)
    if tf is not None and tf.write_rate is not None and tf.write_rate >= HOT_TABLE_WRITES_PER_S and blocks_app:
        held = duration.expected_s if duration else 0.0
        text = (
            f"{tf.name} takes {tf.write_rate:,.0f} writes/s: while the {lock.sql_name if lock else ''} "
            f"request waits and is held, writes queue behind it (~{tf.write_rate * max(held, 0.001):,.0f} "
            f"writes while held)"
        )
        waits.append(text)
        if timeout_ms > 0 and held < 1:
            reasons.append(Reason(RiskLevel.MEDIUM, text + f"; lock_timeout {timeout_ms:.0f} ms bounds the wait"))
        else:
            reasons.append(Reason(RiskLevel.HIGH, text + ("" if timeout_ms > 0 else "; no lock_timeout bounds the wait")))

    if in_migration_txn and blocks_app and lock is LockMode.ACCESS_EXCLUSIVE and work is not WorkClass.METADATA:
        total.notes.append("runs in the migration transaction: the lock is held until it commits")
    if total.extra_disk and work is WorkClass.REWRITE and tf is not None and tf.total_bytes > 10 * 1024**3:
        reasons.append(Reason(RiskLevel.HIGH, f"rewrite needs {format_bytes(total.extra_disk)} of free disk"))
    return reasons, waits


# --- rendering --------------------------------------------------------------------------------


_SHORT_LOCK = {
    LockMode.ACCESS_SHARE: "ACCESS SHARE",
    LockMode.ROW_SHARE: "ROW SHARE",
    LockMode.ROW_EXCLUSIVE: "ROW EXCL",
    LockMode.SHARE_UPDATE_EXCLUSIVE: "SHARE UPD EXCL",
    LockMode.SHARE: "SHARE",
    LockMode.SHARE_ROW_EXCLUSIVE: "SHARE ROW EXCL",
    LockMode.EXCLUSIVE: "EXCLUSIVE",
    LockMode.ACCESS_EXCLUSIVE: "ACCESS EXCL",
}


def _rows_text(s: StepImpact) -> str:
    return "-" if s.rows is None else _compact_int(s.rows)


def _compact_int(n: int) -> str:
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    if n < 1_000_000_000:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e9:.1f}G"


def _time_text(s: StepImpact) -> str:
    return "?" if s.duration is None else str(s.duration)


def _size_text(s: StepImpact) -> str:
    return "-" if s.bytes is None else format_bytes(s.bytes)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _header_line(impact: PlanImpact) -> str:
    source = impact.server if impact.live else f"PostgreSQL {impact.version} (no database: locks only)"
    total = impact.duration
    when = f", total {total}" if total is not None and impact.live else ""
    return f"Impact on {source}: risk {impact.risk.value.upper()}{when}"


def render_revision_header(impact: PlanImpact, *, prefix: str = "# ", width: int = 44) -> str:
    """A compact table, one row per step, for a revision file's header (each line ``prefix``-ed).

    Deterministic for given facts and throughput: no timestamps, no session ages rounded below
    the second.
    """
    rows = [("#", "step", "lock", "blocks", "work", "rows", "size", "time", "risk")]
    for s in impact.steps:
        rows.append((
            str(s.number),
            _truncate(s.description, width),
            _SHORT_LOCK[s.lock] if s.lock else "-",
            s.blocks.short,
            s.work.value,
            _rows_text(s) if impact.live else "-",
            _size_text(s) if impact.live else "-",
            _time_text(s) if impact.live or s.work is WorkClass.METADATA else "?",
            s.risk.value,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [_header_line(impact)]
    for r in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    for s in impact.steps:
        for reason in s.reasons:
            if reason.level.rank >= RiskLevel.MEDIUM.rank:
                lines.append(f"{s.number}: [{reason.level.value}] {reason.text}")
    lines.extend(f"note: {n}" for n in impact.notes)
    return "\n".join((prefix + line).rstrip() for line in lines) + "\n"


render_header = render_revision_header


def render_table(impact: PlanImpact, console: Any | None = None, *, vertical: bool | None = None) -> None:
    """Print the impact (to ``console``, or standard output): a rich table when it fits the
    console's width (``COLUMNS`` where set), otherwise one block per step, so that narrow
    terminals and piped output never wrap words into slivers.  ``vertical`` forces a layout."""
    from rich.console import Console  # lazy: rich only to print; the Alembic plugin imports impact
    from rich.table import Table  # lazy: as above
    from rich.text import Text  # lazy: as above

    console = console or Console()
    colors = {RiskLevel.LOW: "green", RiskLevel.MEDIUM: "yellow", RiskLevel.HIGH: "red",
              RiskLevel.CRITICAL: "bold white on red"}
    table = Table(title=_header_line(impact), title_justify="left", show_lines=False)
    for col in ("#", "step", "lock", "blocks", "work", "rows", "size", "time", "extra disk / WAL", "risk"):
        table.add_column(col, overflow="fold")
    for s in impact.steps:
        table.add_row(
            str(s.number), s.description, s.lock.sql_name if s.lock else "-", s.blocks.value, s.work.value,
            _rows_text(s), _size_text(s), _time_text(s), _disk_text(s),
            Text(s.risk.value, style=colors[s.risk]),
        )
    if vertical is None:
        # The table's natural width, measured as if the console were unbounded.
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        vertical = natural > console.width
    if vertical:
        console.print(Text(_header_line(impact), style="bold"))
        for s in impact.steps:
            console.print()
            console.print(Text.assemble((f"{s.number}. ", "bold"), s.description))
            for label, value in _step_fields(s):
                line = Text.assemble(("   " + label.ljust(9), "dim"), value)
                if label == "risk":
                    line = Text.assemble(("   " + label.ljust(9), "dim"), (value, colors[s.risk]))
                console.print(line)
            for reason in s.reasons:
                console.print(Text(f"   [{reason.level.value}] {reason.text}", style=colors[reason.level]))
            for note in s.notes:
                console.print(Text(f"   {note}", style="dim"))
        if impact.notes:
            console.print()
    else:
        console.print(table)
        for s in impact.steps:
            for reason in s.reasons:
                console.print(Text(f"  {s.number}: [{reason.level.value}] {reason.text}", style=colors[reason.level]))
            for note in s.notes:
                console.print(Text(f"  {s.number}: {note}", style="dim"))
    for note in impact.notes:
        console.print(Text(f"  note: {note}", style="yellow"))
    console.print(Text(f"  throughput: {impact.throughput.describe}", style="dim"))


def _disk_text(s: StepImpact) -> str:
    if not (s.extra_disk_bytes or s.wal_bytes):
        return "-"
    return f"{format_bytes(s.extra_disk_bytes)} / {format_bytes(s.wal_bytes)}"


def _step_fields(s: StepImpact) -> list[tuple[str, str]]:
    """The table's columns for one step, as label / value pairs (the vertical layout)."""
    return [
        ("lock", s.lock.sql_name if s.lock else "-"),
        ("blocks", s.blocks.value),
        ("work", s.work.value),
        ("rows", _rows_text(s)),
        ("size", _size_text(s)),
        ("time", _time_text(s)),
        ("disk/WAL", _disk_text(s)),
        ("risk", s.risk.value),
    ]


def to_dict(impact: PlanImpact) -> dict[str, Any]:
    def duration(d: DurationRange | None) -> dict[str, float] | None:
        return None if d is None else {"low_s": round(d.low_s, 4), "expected_s": round(d.expected_s, 4),
                                       "high_s": round(d.high_s, 4)}

    return {
        "version": str(impact.version),
        "live": impact.live,
        "server": impact.server,
        "risk": impact.risk.value,
        "duration": duration(impact.duration),
        "throughput": {"scan_bytes_per_s": round(impact.throughput.scan_bps), "source": impact.throughput.source,
                       "detail": impact.throughput.detail,
                       "statement_s": round(impact.throughput.statement_s, 6),
                       "sort_row_s": {k: round(v, 9) for k, v in impact.throughput.sort_row_s.items()}},
        "notes": list(impact.notes),
        "steps": [
            {
                "number": s.number,
                "description": s.description,
                "phase": s.step.phase.value,
                "transaction": s.step.transaction.value,
                "sql": list(s.step.sql),
                "table": None if s.table is None else str(s.table),
                "lock": None if s.lock is None else s.lock.sql_name,
                "blocks": s.blocks.value,
                "work": s.work.value,
                "rows": s.rows,
                "bytes": s.bytes,
                "duration": duration(s.duration),
                "extra_disk_bytes": s.extra_disk_bytes,
                "wal_bytes": s.wal_bytes,
                "lock_wait": list(s.lock_wait),
                "risk": s.risk.value,
                "reasons": [{"level": r.level.value, "text": r.text} for r in s.reasons],
                "notes": list(s.notes),
            }
            for s in impact.steps
        ],
    }


def to_json(impact: PlanImpact) -> str:
    return json.dumps(to_dict(impact), indent=2)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(impact: PlanImpact) -> str:
    lines = [f"### {_md(_header_line(impact))}", "",
             "| # | step | lock | blocks | work | rows | size | time | risk |",
             "| ---: | --- | --- | --- | --- | ---: | ---: | --- | --- |"]
    for s in impact.steps:
        lines.append(
            f"| {s.number} | {_md(s.description)} | {s.lock.sql_name if s.lock else '-'} | {s.blocks.value} | "
            f"{s.work.value} | {_rows_text(s)} | {_size_text(s)} | {_time_text(s)} | **{s.risk.value}** |"
        )
    details = [(s, r.level.value, r.text) for s in impact.steps for r in s.reasons]
    details += [(s, "note", n) for s in impact.steps for n in s.notes]
    if details or impact.notes:
        lines.append("")
    for s, level, text in details:
        lines.append(f"- step {s.number} ({level}): {_md(text)}")
    for note in impact.notes:
        lines.append(f"- note: {_md(note)}")
    lines.append("")
    lines.append(f"_Throughput: {impact.throughput.describe}_")
    return "\n".join(lines) + "\n"
