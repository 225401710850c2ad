"""The lock knowledge base: what each change does to a live table, per PostgreSQL version.

For every change kind and variant, and each supported server version (13-18), :func:`effect_of`
answers: the lock mode taken on each relation the change touches, what that lock blocks, the work
done while it is held (metadata only, a full scan, a table rewrite, an index build), and whether
the statement may run inside a transaction block.

Every answer here is checked against real PostgreSQL 15 and 18 servers by ``tests/proof``: the
test executes each form on a table of 100,000 rows, reads ``pg_locks`` and ``relfilenode`` from a
second connection, probes a concurrent read and write, and compares with this module.

Sources for the version-specific facts are PostgreSQL's documentation ("Explicit Locking", the
``ALTER TABLE`` and ``CREATE INDEX`` reference pages) and release notes; each is named where used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pglast import ast, parse_sql
from pglast.enums import ObjectType

from . import changes as c
from .changes import Change, ConstraintKind, QualifiedName
from .effects import Certainty, Effect, RelationLock, RelationRole, TransactionUse, WorkClass
from .locks import LockMode, strongest_per_relation
from .sql_parse import changes_from_sql
from .typechange import CastLookup, classify
from .versions import PgVersion

ALTER_TABLE_LOCK = LockMode.ACCESS_EXCLUSIVE


class SchemaLookup(CastLookup, Protocol):
    """Read-only facts from a live server; :class:`helios_migrate.catalog.LiveCatalog` implements it."""

    def column_type(self, table: QualifiedName, column: str) -> str | None: ...

    def has_valid_not_null_check(self, table: QualifiedName, column: str) -> bool: ...

    def constraint(
        self, table: QualifiedName, name: str
    ) -> tuple[ConstraintKind, QualifiedName | None] | None: ...

    def index_table(self, index: QualifiedName) -> QualifiedName | None: ...

    def table_indexes(self, table: QualifiedName) -> tuple[QualifiedName, ...]: ...

    def function_volatility(self, name: str) -> str | None: ...

    def default_partition(self, table: QualifiedName) -> QualifiedName | None: ...


@dataclass(frozen=True)
class _Ctx:
    version: PgVersion
    catalog: SchemaLookup | None


# Handlers take the concrete change class they are registered for; the registry cannot express
# that per key, hence ``Any``.
_Handler = Callable[[Any, "_Ctx"], Effect]
_HANDLERS: dict[type[Change], _Handler] = {}


def _handles(*kinds: type[Change]) -> Callable[[_Handler], _Handler]:
    def register(fn: _Handler) -> _Handler:
        for kind in kinds:
            _HANDLERS[kind] = fn
        return fn

    return register


def effect_of(change: Change, version: PgVersion, catalog: SchemaLookup | None = None) -> Effect:
    """What ``change`` does on a server of ``version``; exact where ``catalog`` can tell."""
    handler = _HANDLERS.get(type(change))
    if handler is None:  # pragma: no cover - every class in CHANGE_TYPES is registered (tested)
        raise TypeError(f"no knowledge for {type(change).__name__}")
    effect = handler(change, _Ctx(version, catalog))
    if effect.rewrites_table and not effect.rebuilt_indexes and catalog is not None:
        # A rewrite gives every index of the table a new file too: name them.
        table = change.table
        if table is not None and not effect.unsupported:
            effect = replace(effect, rebuilt_indexes=catalog.table_indexes(table))
    return effect


def effects_for_sql(sql: str, version: PgVersion, catalog: SchemaLookup | None = None) -> list[Effect]:
    """Parse ``sql`` and return the effect of every change in it, in order."""
    return [effect_of(ch, version, catalog) for ch in changes_from_sql(sql)]


def combine(effects: Sequence[Effect]) -> list[RelationLock]:
    """The strongest lock per relation over several changes (one ALTER TABLE, one transaction)."""
    return list(strongest_per_relation(lock for eff in effects for lock in eff.locks).values())


# --- helpers ----------------------------------------------------------------------------------


def _on(
    table: QualifiedName | None,
    mode: LockMode,
    role: RelationRole = RelationRole.TABLE,
    *,
    blocking: bool = True,
) -> tuple[RelationLock, ...]:
    return () if table is None else (RelationLock(table, role, mode, blocking),)


def _concurrent_index_notes(version: PgVersion) -> tuple[str, ...]:
    affected = version.concurrent_index_bug
    if affected is not False:
        qualifier = "" if affected else " (if the server is 14.0-14.3)"
        return (
            f"PostgreSQL 14.0-14.3 can build corrupt indexes concurrently{qualifier}: upgrade to "
            "14.4 or later, then REINDEX indexes built concurrently on those releases",
        )
    return ()


def _min_version(version: PgVersion, major: int, what: str) -> str | None:
    if version.major < major:
        return f"{what} needs PostgreSQL {major} or later; this server is {version}"
    return None


_SERIAL_TYPES = {"serial", "bigserial", "smallserial"}

_VOLATILE_FUNCTIONS = {
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "uuidv4", "uuidv7", "clock_timestamp", "timeofday", "nextval", "txid_current",
    "pg_current_xact_id", "random_normal", "setseed",
}
_NON_VOLATILE_FUNCTIONS = {
    "now", "transaction_timestamp", "statement_timestamp", "current_setting", "lower", "upper",
    "btrim", "trim", "concat", "length", "jsonb_build_object", "json_build_object",
    "jsonb_build_array", "json_build_array", "to_jsonb", "array_length", "abs", "round",
    "make_interval", "make_date", "to_char", "to_timestamp", "date_trunc", "coalesce", "nullif",
    "greatest", "least",
}


def _default_volatility(expr: str, catalog: SchemaLookup | None) -> tuple[bool, Certainty]:
    """Is a column default volatile (evaluated per row, so ADD COLUMN must rewrite the table)?"""
    try:
        tree = parse_sql(f"SELECT {expr}")
    except Exception:
        return True, Certainty.CONSERVATIVE
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, ast.FuncCall):
            names.append(".".join(str(s.sval) for s in node.funcname or () if isinstance(s, ast.String)))
        if isinstance(node, ast.Node):
            for attr in node:
                walk(getattr(node, attr))
        elif isinstance(node, tuple):
            for item in node:
                walk(item)

    walk(tree[0].stmt)
    certainty = Certainty.KNOWN
    for name in names:
        short = name.rpartition(".")[2]
        if short in _VOLATILE_FUNCTIONS:
            return True, Certainty.KNOWN
        if catalog is not None:
            vol = catalog.function_volatility(name)
            if vol == "v":
                return True, Certainty.CATALOG
            if vol is not None:
                certainty = Certainty.CATALOG
                continue
        if short not in _NON_VOLATILE_FUNCTIONS:
            return True, Certainty.CONSERVATIVE
    return False, certainty


# --- tables -----------------------------------------------------------------------------------


@_handles(c.CreateTable)
def _create_table(ch: c.CreateTable, ctx: _Ctx) -> Effect:
    locks = list(_on(ch.on, LockMode.ACCESS_EXCLUSIVE, blocking=False))
    notes = ["a new table is visible to no one until the transaction commits"]
    refs = [col.references.table for col in ch.columns if col.references] + [
        k.references.table for k in ch.constraints if k.references
    ]
    for ref in dict.fromkeys(refs):
        # Adding the foreign key's triggers on the referenced table: as for ADD FOREIGN KEY.
        locks.append(RelationLock(ref, RelationRole.REFERENCED_TABLE, LockMode.SHARE_ROW_EXCLUSIVE))
    work = WorkClass.METADATA
    if ch.partition_of is not None:
        locks.append(RelationLock(ch.partition_of, RelationRole.PARENT, LockMode.ACCESS_EXCLUSIVE))
        notes.append(
            "CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on the parent; a default "
            "partition is scanned for rows that belong to the new one"
        )
    return Effect(
        ch, tuple(locks), work, notes=tuple(notes),
        safer_alternative=(
            "create the table standalone, add a CHECK matching the bound, then ATTACH PARTITION"
            if ch.partition_of is not None else None
        ),
    )


@_handles(c.DropTable)
def _drop_table(ch: c.DropTable, ctx: _Ctx) -> Effect:
    # Removing the table's foreign-key triggers from the tables it references locks them too.
    lookup = getattr(ctx.catalog, "referenced_tables", None)
    referenced: tuple[QualifiedName, ...] = lookup(ch.on) if lookup is not None else ()
    locks = _on(ch.on, LockMode.ACCESS_EXCLUSIVE) + tuple(
        RelationLock(r, RelationRole.REFERENCED_TABLE, LockMode.ACCESS_EXCLUSIVE) for r in referenced
    )
    # Dropping a partition detaches it from its parent first (ACCESS EXCLUSIVE on the parent);
    # dropping a partitioned table drops every partition with it.
    parent_of = getattr(ctx.catalog, "partition_parent", None)
    parent = parent_of(ch.on) if parent_of is not None else None
    locks += _on(parent, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARENT)
    partitions_of = getattr(ctx.catalog, "partitions", None)
    locks += tuple(
        RelationLock(p, RelationRole.PARTITION, LockMode.ACCESS_EXCLUSIVE)
        for p in (partitions_of(ch.on) if partitions_of is not None else ())
    )
    return Effect(
        ch, locks, WorkClass.METADATA,
        certainty=Certainty.CATALOG if lookup is not None else Certainty.KNOWN,
        notes=(
            "data is lost"
            + ("" if lookup is not None else "; tables it references by foreign key are also "
               "locked ACCESS EXCLUSIVE while its triggers are removed"),
        ),
        safer_alternative="stop using the table in code first, then drop it in a later contract revision",
    )


@_handles(c.RenameTable)
def _rename_table(ch: c.RenameTable, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA,
        notes=("brief lock, but running code that uses the old name breaks at once",),
        safer_alternative="rename, then create a view with the old name until code is deployed",
    )


@_handles(c.TruncateTable)
def _truncate(ch: c.TruncateTable, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA, rewrites_table=True,
        notes=("swaps in a new, empty file (new relfilenode); all rows are lost",),
    )


@_handles(c.VacuumFull)
def _vacuum_full(ch: c.VacuumFull, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.REWRITE, rewrites_table=True,
        transaction=TransactionUse.OUTSIDE_ONLY,
        safer_alternative="rebuild online with pg_repack or pg_squeeze, or rely on plain VACUUM",
    )


@_handles(c.Cluster)
def _cluster(ch: c.Cluster, ctx: _Ctx) -> Effect:
    # cluster_rel() locks the index it orders by ACCESS EXCLUSIVE as well as the table.
    index = QualifiedName(ch.index, ch.on.schema) if ch.index else None
    if index is None:
        lookup = getattr(ctx.catalog, "clustered_index", None)
        index = lookup(ch.on) if lookup is not None else None
    return Effect(
        ch,
        _on(ch.on, LockMode.ACCESS_EXCLUSIVE) + _on(index, LockMode.ACCESS_EXCLUSIVE, RelationRole.INDEX),
        WorkClass.REWRITE, rewrites_table=True,
        safer_alternative="reorder online with pg_repack --order-by",
    )


# --- columns ----------------------------------------------------------------------------------


@_handles(c.AddColumn)
def _add_column(ch: c.AddColumn, ctx: _Ctx) -> Effect:
    col = ch.column
    locks = list(_on(ch.on, LockMode.ACCESS_EXCLUSIVE))
    notes: list[str] = []
    certainty = Certainty.KNOWN
    work = WorkClass.METADATA
    rewrites = False
    safer = None
    unsupported = None
    generated_kind = col.generated_kind
    if col.generated is not None and generated_kind is None:
        # PostgreSQL 18 made VIRTUAL the default for generated columns.
        generated_kind = c.GeneratedKind.VIRTUAL if ctx.version.major >= 18 else c.GeneratedKind.STORED
    if col.identity is not None or col.type in _SERIAL_TYPES:
        rewrites, work = True, WorkClass.REWRITE
        notes.append(
            "an identity or serial column fills every existing row from its sequence "
            "(nextval() is volatile)"
        )
        safer = "add a plain nullable column, set a sequence default, backfill in batches"
    elif col.generated is not None and generated_kind is c.GeneratedKind.STORED:
        rewrites, work = True, WorkClass.REWRITE
        notes.append("a stored generated column is computed for every existing row")
        safer = "add a nullable column, backfill in batches, keep it in sync with a trigger"
    elif col.generated is not None:
        unsupported = _min_version(ctx.version, 18, "a VIRTUAL generated column")
        notes.append("a virtual generated column is computed on read: no rewrite")
    elif col.default is not None:
        volatile, certainty = _default_volatility(col.default, ctx.catalog)
        if volatile:
            rewrites, work = True, WorkClass.REWRITE
            notes.append(
                f"the default {col.default} is volatile: it is evaluated for every existing row"
                + (" (assumed volatile: not a known function)" if certainty is Certainty.CONSERVATIVE else "")
            )
            safer = (
                "add the column without a default, SET DEFAULT for new rows, then backfill "
                "existing rows in batches"
            )
        else:
            notes.append("a non-volatile default is stored once in the catalog (PostgreSQL 11+): no rewrite")
    elif not col.nullable:
        work = WorkClass.SCAN
        notes.append("NOT NULL without a default fails unless the table is empty")
        safer = "add it nullable, backfill, then add NOT NULL without a long lock"
    if col.check is not None and work is WorkClass.METADATA:
        work = WorkClass.SCAN
    if col.references is not None:
        locks.append(
            RelationLock(col.references.table, RelationRole.REFERENCED_TABLE, LockMode.SHARE_ROW_EXCLUSIVE)
        )
        if work is WorkClass.METADATA:
            work = WorkClass.SCAN
    if (col.unique or col.primary_key) and not rewrites:
        work = WorkClass.INDEX_BUILD
        safer = "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
    return Effect(
        ch, tuple(locks), work, rewrites_table=rewrites,
        builds_index=rewrites or col.unique or col.primary_key, certainty=certainty,
        notes=tuple(notes), safer_alternative=safer, unsupported=unsupported,
    )


@_handles(c.DropColumn)
def _drop_column(ch: c.DropColumn, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA,
        notes=("the column is only marked dropped; its data is unrecoverable and indexes on it are dropped",),
        safer_alternative="stop reading and writing the column in code first, then drop it in a contract revision",
    )


@_handles(c.RenameColumn)
def _rename_column(ch: c.RenameColumn, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA,
        notes=("brief lock, but running code that uses the old name breaks at once",),
        safer_alternative="expand/contract: add the new column, sync and backfill, switch code, drop the old one",
    )


@_handles(c.AlterColumnType)
def _alter_type(ch: c.AlterColumnType, ctx: _Ctx) -> Effect:
    old = ch.old_type
    if old is None and ctx.catalog is not None:
        old = ctx.catalog.column_type(ch.on, ch.column)
    verdict = classify(
        old, ch.new_type, column=ch.column, using=ch.using, version=ctx.version, catalog=ctx.catalog
    )
    notes = [verdict.reason]
    if verdict.rewrites:
        return Effect(
            ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.REWRITE, rewrites_table=True,
            builds_index=True, certainty=verdict.certainty, notes=(*notes, "every index on the table is rebuilt"),
            safer_alternative=(
                "expand/contract: add a column of the new type, keep it in sync with a trigger, "
                "backfill in batches, then swap in a later revision"
            ),
        )
    lookup = getattr(ctx.catalog, "type_change_index_rebuilds", None)
    rebuilds = lookup(ch.on, ch.column, ch.new_type, ch.collation) if lookup is not None else None
    if rebuilds is not None:
        if not rebuilds:
            return Effect(
                ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA,
                certainty=Certainty.CATALOG,
                notes=(*notes, "no index on the column needs rebuilding: catalog only"),
            )
        return Effect(
            ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.INDEX_BUILD, builds_index=True,
            certainty=Certainty.CATALOG,
            rebuilt_indexes=tuple(r.index for r in rebuilds),
            notes=(
                f"{notes[0]}: the table is kept",
                *(f"index rebuild under ACCESS EXCLUSIVE: {r.index} ({r.reason})" for r in rebuilds),
                "reads and writes wait until every index listed is rebuilt",
            ),
            safer_alternative=(
                "expand/contract: add a column of the new type, backfill in batches, build its "
                "indexes CONCURRENTLY, then swap in a later revision"
            ),
        )
    if ch.collation is not None:
        # The values are unchanged, but indexes on the column sort by the old collation.
        return Effect(
            ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.INDEX_BUILD, builds_index=True,
            certainty=verdict.certainty,
            notes=(*notes, "a collation change rebuilds every index on the column, under ACCESS EXCLUSIVE"),
            safer_alternative="build a new index with the new collation CONCURRENTLY first, then switch",
        )
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA,
        certainty=verdict.certainty,
        notes=(
            *notes,
            "an index on the column is rebuilt if its operator class or collation changes or it has "
            "an expression or predicate on the column (unknown offline: pass --database-url)",
        ) if ctx.catalog is None else tuple(notes),
    )


@_handles(c.SetNotNull)
def _set_not_null(ch: c.SetNotNull, ctx: _Ctx) -> Effect:
    if ctx.catalog is not None and ctx.catalog.has_valid_not_null_check(ch.on, ch.column):
        return Effect(
            ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA, certainty=Certainty.CATALOG,
            notes=("a validated CHECK (col IS NOT NULL) proves the column has no NULLs: no scan (PostgreSQL 12+)",),
        )
    if ctx.version.major >= 18:
        safer = (
            "ADD CONSTRAINT <name> NOT NULL <col> NOT VALID, then VALIDATE CONSTRAINT in a "
            "separate transaction (PostgreSQL 18)"
        )
    else:
        safer = (
            "ADD CONSTRAINT <name> CHECK (<col> IS NOT NULL) NOT VALID; VALIDATE it in a separate "
            "transaction; then SET NOT NULL (no scan) and drop the CHECK"
        )
    return Effect(
        ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.SCAN,
        certainty=Certainty.KNOWN if ctx.catalog is not None else Certainty.CONSERVATIVE,
        notes=(
            "every row is read to prove there are no NULLs, under ACCESS EXCLUSIVE"
            + ("" if ctx.catalog is not None else " (skipped if a validated CHECK (col IS NOT NULL) exists)"),
        ),
        safer_alternative=safer,
    )


@_handles(c.DropNotNull, c.SetDefault, c.DropDefault)
def _column_metadata(ch: c.DropNotNull | c.SetDefault | c.DropDefault, ctx: _Ctx) -> Effect:
    return Effect(ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA)


# --- constraints ------------------------------------------------------------------------------


@_handles(c.AddConstraint)
def _add_constraint(ch: c.AddConstraint, ctx: _Ctx) -> Effect:
    k = ch.constraint
    if not k.enforced:
        mode = LockMode.SHARE_ROW_EXCLUSIVE if k.kind is ConstraintKind.FOREIGN_KEY else LockMode.ACCESS_EXCLUSIVE
        locks = _on(ch.on, mode)
        if k.kind is ConstraintKind.FOREIGN_KEY and k.references is not None:
            # The referenced table is opened SHARE ROW EXCLUSIVE even though no trigger is added.
            locks += _on(k.references.table, LockMode.SHARE_ROW_EXCLUSIVE, RelationRole.REFERENCED_TABLE)
        return Effect(
            ch, locks, WorkClass.METADATA,
            unsupported=_min_version(ctx.version, 18, "NOT ENFORCED constraints"),
            notes=("NOT ENFORCED: existing and new rows are never checked",),
        )
    if k.kind is ConstraintKind.FOREIGN_KEY:
        # ALTER TABLE docs: ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables.
        locks = _on(ch.on, LockMode.SHARE_ROW_EXCLUSIVE)
        if k.references is not None:
            locks += _on(k.references.table, LockMode.SHARE_ROW_EXCLUSIVE, RelationRole.REFERENCED_TABLE)
        if k.not_valid:
            return Effect(ch, locks, WorkClass.METADATA, notes=("existing rows are not checked until VALIDATE",))
        return Effect(
            ch, locks, WorkClass.SCAN,
            notes=("every row is checked against the referenced table while writes to both wait",),
            safer_alternative="ADD ... NOT VALID, then VALIDATE CONSTRAINT in a separate transaction",
        )
    locks = _on(ch.on, LockMode.ACCESS_EXCLUSIVE)
    if k.kind in (ConstraintKind.CHECK, ConstraintKind.NOT_NULL):
        unsupported = (
            _min_version(ctx.version, 18, "ADD CONSTRAINT ... NOT NULL")
            if k.kind is ConstraintKind.NOT_NULL else None
        )
        if k.not_valid:
            return Effect(
                ch, locks, WorkClass.METADATA, unsupported=unsupported,
                notes=("existing rows are not checked until VALIDATE",),
            )
        return Effect(
            ch, locks, WorkClass.SCAN, unsupported=unsupported,
            notes=("every row is checked under ACCESS EXCLUSIVE",),
            safer_alternative="ADD ... NOT VALID, then VALIDATE CONSTRAINT in a separate transaction",
        )
    if k.using_index is not None:
        notes = ["adopts an existing unique index: no index build"]
        if k.kind is ConstraintKind.PRIMARY_KEY:
            notes.append("columns not yet NOT NULL are scanned to set NOT NULL")
        index = QualifiedName(k.using_index, ch.on.schema)
        return Effect(
            ch, locks + _on(index, LockMode.SHARE_UPDATE_EXCLUSIVE, RelationRole.INDEX),
            WorkClass.METADATA, notes=tuple(notes),
        )
    return Effect(
        ch, locks, WorkClass.INDEX_BUILD, builds_index=True,
        notes=(f"the {k.kind.value} index is built while reads and writes wait",),
        safer_alternative=(
            "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
            if k.kind is not ConstraintKind.EXCLUDE else None
        ),
    )


@_handles(c.DropConstraint)
def _drop_constraint(ch: c.DropConstraint, ctx: _Ctx) -> Effect:
    locks = _on(ch.on, LockMode.ACCESS_EXCLUSIVE)
    certainty = Certainty.KNOWN
    notes: tuple[str, ...] = ()
    info = ctx.catalog.constraint(ch.on, ch.name) if ctx.catalog is not None else None
    if info is not None and info[0] is ConstraintKind.FOREIGN_KEY and info[1] is not None:
        # Removing the foreign key's triggers from the referenced table locks it ACCESS EXCLUSIVE.
        locks += _on(info[1], LockMode.ACCESS_EXCLUSIVE, RelationRole.REFERENCED_TABLE)
        certainty = Certainty.CATALOG
    elif ctx.catalog is None:
        notes = ("if it is a foreign key, the referenced table is locked ACCESS EXCLUSIVE too",)
    return Effect(ch, locks, WorkClass.METADATA, certainty=certainty, notes=notes)


@_handles(c.ValidateConstraint)
def _validate(ch: c.ValidateConstraint, ctx: _Ctx) -> Effect:
    locks = _on(ch.on, LockMode.SHARE_UPDATE_EXCLUSIVE)
    info = ctx.catalog.constraint(ch.on, ch.name) if ctx.catalog is not None else None
    notes = ["reads every row; reads and writes continue (SHARE UPDATE EXCLUSIVE)"]
    if info is not None and info[0] is ConstraintKind.FOREIGN_KEY and info[1] is not None:
        locks += _on(info[1], LockMode.ROW_SHARE, RelationRole.REFERENCED_TABLE)
    elif info is None:
        notes.append("if it is a foreign key, the referenced table is locked ROW SHARE")
    return Effect(
        ch, locks, WorkClass.SCAN, notes=tuple(notes),
        certainty=Certainty.CATALOG if info is not None else Certainty.KNOWN,
    )


# --- indexes ----------------------------------------------------------------------------------


@_handles(c.CreateIndex)
def _create_index(ch: c.CreateIndex, ctx: _Ctx) -> Effect:
    if ch.only:
        return Effect(
            ch, _on(ch.on, LockMode.SHARE), WorkClass.METADATA,
            notes=(
                "ON ONLY creates an invalid index on the partitioned parent alone; build each "
                "partition's index CONCURRENTLY and ALTER INDEX ... ATTACH PARTITION it",
            ),
        )
    if ch.concurrently:
        return Effect(
            ch, _on(ch.on, LockMode.SHARE_UPDATE_EXCLUSIVE), WorkClass.INDEX_BUILD, builds_index=True,
            transaction=TransactionUse.OUTSIDE_ONLY,
            notes=(
                "waits for every transaction that could use the table to finish; a failure leaves an "
                "INVALID index to drop before retrying",
                *_concurrent_index_notes(ctx.version),
            ),
        )
    # On a partitioned table the index is built on every partition, each locked SHARE.
    partitions_of = getattr(ctx.catalog, "partitions", None)
    partitions = partitions_of(ch.on) if partitions_of is not None else ()
    if partitions:
        return Effect(
            ch,
            _on(ch.on, LockMode.SHARE, RelationRole.PARENT)
            + tuple(RelationLock(p, RelationRole.PARTITION, LockMode.SHARE) for p in partitions),
            WorkClass.INDEX_BUILD, builds_index=True, certainty=Certainty.CATALOG,
            notes=("writes to every partition wait for the whole build; reads continue",),
            safer_alternative=(
                "CREATE INDEX ... ON ONLY the parent, build each partition's index CONCURRENTLY, "
                "then ALTER INDEX ... ATTACH PARTITION each"
            ),
        )
    return Effect(
        ch, _on(ch.on, LockMode.SHARE), WorkClass.INDEX_BUILD, builds_index=True,
        notes=("writes wait for the whole build; reads continue",),
        safer_alternative="CREATE INDEX CONCURRENTLY, outside a transaction block",
    )


@_handles(c.DropIndex)
def _drop_index(ch: c.DropIndex, ctx: _Ctx) -> Effect:
    table = ch.on
    if table is None and ctx.catalog is not None:
        table = ctx.catalog.index_table(ch.index)
    notes: tuple[str, ...] = () if table is not None else ("the indexed table is locked too (unknown offline)",)
    if ch.concurrently:
        return Effect(
            ch,
            _on(table, LockMode.SHARE_UPDATE_EXCLUSIVE)
            + _on(ch.index, LockMode.ACCESS_EXCLUSIVE, RelationRole.INDEX, blocking=False),
            WorkClass.METADATA, transaction=TransactionUse.OUTSIDE_ONLY,
            notes=(
                *notes,
                "waits for transactions using the table; the index is invalidated under SHARE UPDATE "
                "EXCLUSIVE, and locked ACCESS EXCLUSIVE only once no query can use it",
            ),
        )
    return Effect(
        ch,
        _on(table, LockMode.ACCESS_EXCLUSIVE) + _on(ch.index, LockMode.ACCESS_EXCLUSIVE, RelationRole.INDEX),
        WorkClass.METADATA, notes=notes,
        safer_alternative="DROP INDEX CONCURRENTLY, outside a transaction block",
    )


@_handles(c.Reindex)
def _reindex(ch: c.Reindex, ctx: _Ctx) -> Effect:
    if ch.target is c.ReindexTarget.INDEX:
        table = ctx.catalog.index_table(ch.name) if ctx.catalog is not None else None
        indexes: tuple[QualifiedName, ...] = (ch.name,)
    else:
        table = ch.name
        indexes = ctx.catalog.table_indexes(ch.name) if ctx.catalog is not None else ()
    if ch.concurrently:
        locks = _on(table, LockMode.SHARE_UPDATE_EXCLUSIVE) + tuple(
            RelationLock(i, RelationRole.INDEX, LockMode.SHARE_UPDATE_EXCLUSIVE) for i in indexes
        )
        return Effect(
            ch, locks, WorkClass.INDEX_BUILD, builds_index=True, transaction=TransactionUse.OUTSIDE_ONLY,
            rebuilt_indexes=indexes,
            notes=("builds a new index beside the old one and swaps them; the old one, renamed "
                   "<name>_ccold and already unused, is dropped under a brief ACCESS EXCLUSIVE",
                   *_concurrent_index_notes(ctx.version)),
            unsupported=_min_version(ctx.version, 12, "REINDEX CONCURRENTLY"),
        )
    locks = _on(table, LockMode.SHARE) + tuple(
        RelationLock(i, RelationRole.INDEX, LockMode.ACCESS_EXCLUSIVE) for i in indexes
    )
    return Effect(
        ch, locks, WorkClass.INDEX_BUILD, builds_index=True, rebuilt_indexes=indexes,
        notes=("writes wait; queries that plan on the table wait for the ACCESS EXCLUSIVE index lock",),
        safer_alternative="REINDEX ... CONCURRENTLY (PostgreSQL 12+)",
    )


# --- types ------------------------------------------------------------------------------------


@_handles(c.CreateEnum, c.DropEnum, c.RenameEnumValue)
def _enum_metadata(ch: c.CreateEnum | c.DropEnum | c.RenameEnumValue, ctx: _Ctx) -> Effect:
    return Effect(ch, (), WorkClass.METADATA)


@_handles(c.AddEnumValue)
def _add_enum_value(ch: c.AddEnumValue, ctx: _Ctx) -> Effect:
    # Since PostgreSQL 12 ADD VALUE may run in a transaction block, but the new value cannot be used
    # until that transaction commits.
    return Effect(
        ch, _on(ch.name, LockMode.EXCLUSIVE, RelationRole.TYPE), WorkClass.METADATA,
        transaction=TransactionUse.COMMIT_BEFORE_USE,
        notes=("no table lock; the new value is usable only after the transaction commits",),
    )


# --- triggers, views, partitions --------------------------------------------------------------


@_handles(c.CreateTrigger)
def _create_trigger(ch: c.CreateTrigger, ctx: _Ctx) -> Effect:
    return Effect(
        ch, _on(ch.on, LockMode.SHARE_ROW_EXCLUSIVE), WorkClass.METADATA,
        unsupported=_min_version(ctx.version, 14, "CREATE OR REPLACE TRIGGER") if ch.or_replace else None,
    )


@_handles(c.DropTrigger)
def _drop_trigger(ch: c.DropTrigger, ctx: _Ctx) -> Effect:
    return Effect(ch, _on(ch.on, LockMode.ACCESS_EXCLUSIVE), WorkClass.METADATA)


@_handles(c.CreateView)
def _create_view(ch: c.CreateView, ctx: _Ctx) -> Effect:
    # A new view is invisible until commit; OR REPLACE may replace one that sessions are reading.
    locks = _on(ch.name, LockMode.ACCESS_EXCLUSIVE, RelationRole.VIEW, blocking=ch.or_replace) + tuple(
        RelationLock(r, RelationRole.TABLE, LockMode.ACCESS_SHARE) for r in ch.reads
    )
    return Effect(ch, locks, WorkClass.SCAN if ch.materialized else WorkClass.METADATA)


@_handles(c.DropView)
def _drop_view(ch: c.DropView, ctx: _Ctx) -> Effect:
    return Effect(ch, _on(ch.name, LockMode.ACCESS_EXCLUSIVE, RelationRole.VIEW), WorkClass.METADATA)


@_handles(c.RefreshMaterializedView)
def _refresh(ch: c.RefreshMaterializedView, ctx: _Ctx) -> Effect:
    if ch.concurrently:
        return Effect(
            ch, _on(ch.name, LockMode.EXCLUSIVE, RelationRole.VIEW), WorkClass.REWRITE,
            notes=("reads continue; needs a unique index on the materialized view",),
        )
    return Effect(
        ch, _on(ch.name, LockMode.ACCESS_EXCLUSIVE, RelationRole.VIEW), WorkClass.REWRITE,
        rewrites_table=True, safer_alternative="REFRESH MATERIALIZED VIEW CONCURRENTLY",
    )


@_handles(c.AttachPartition)
def _attach(ch: c.AttachPartition, ctx: _Ctx) -> Effect:
    # PostgreSQL 12+: ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent.
    locks = _on(ch.on, LockMode.SHARE_UPDATE_EXCLUSIVE, RelationRole.PARENT) + _on(
        ch.partition, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARTITION
    )
    default = ctx.catalog.default_partition(ch.on) if ctx.catalog is not None else None
    if default is not None:
        locks += _on(default, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARTITION)
    return Effect(
        ch, locks, WorkClass.SCAN,
        notes=(
            "the new partition is scanned to prove its rows fit the bound, unless a validated CHECK "
            "constraint implies the bound",
            "indexes of the parent missing on the partition are built",
        ),
        safer_alternative=(
            "before attaching, ADD a CHECK matching the bound NOT VALID and VALIDATE it; attach; "
            "then drop the CHECK"
        ),
    )


@_handles(c.DetachPartition)
def _detach(ch: c.DetachPartition, ctx: _Ctx) -> Effect:
    if ch.concurrently or ch.finalize:
        return Effect(
            ch,
            _on(ch.on, LockMode.SHARE_UPDATE_EXCLUSIVE, RelationRole.PARENT)
            + _on(ch.partition, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARTITION),
            WorkClass.METADATA, transaction=TransactionUse.OUTSIDE_ONLY,
            unsupported=_min_version(ctx.version, 14, "DETACH PARTITION CONCURRENTLY"),
            notes=(
                "the parent stays readable and writable; the partition itself is locked ACCESS "
                "EXCLUSIVE in the second transaction, after waiting for transactions using the parent",
            ),
        )
    return Effect(
        ch,
        _on(ch.on, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARENT)
        + _on(ch.partition, LockMode.ACCESS_EXCLUSIVE, RelationRole.PARTITION),
        WorkClass.METADATA,
        safer_alternative=(
            "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+)" if ctx.version.major >= 14 else None
        ),
    )


# --- data, session and transaction statements -------------------------------------------------


@_handles(c.ModifyRows)
def _modify_rows(ch: c.ModifyRows, ctx: _Ctx) -> Effect:
    notes: tuple[str, ...] = ()
    safer = None
    if ch.operation is not c.DataOperation.INSERT and not ch.has_where:
        notes = ("touches every row in one transaction: row locks, WAL and bloat for the whole table",)
        safer = "backfill in batches by primary key, each batch in its own short transaction"
    return Effect(
        ch, _on(ch.on, LockMode.ROW_EXCLUSIVE), WorkClass.ROW_WRITES, notes=notes, safer_alternative=safer
    )


@_handles(c.SetSetting)
def _set_setting(ch: c.SetSetting, ctx: _Ctx) -> Effect:
    # The migration's own SET (TimeZone decides timestamp <-> timestamptz) holds for the
    # statements after it: the live catalog stands for the migration's session.
    apply = getattr(ctx.catalog, "apply_setting", None)
    if apply is not None:
        apply(ch.name, ch.value)
    return Effect(ch, (), WorkClass.METADATA)


@_handles(c.TransactionControl)
def _no_lock(ch: c.TransactionControl, ctx: _Ctx) -> Effect:
    return Effect(ch, (), WorkClass.METADATA)


# --- statements the change model does not describe --------------------------------------------

# ALTER TABLE subcommands with a lock weaker than ACCESS EXCLUSIVE (AlterTableGetLockLevel in
# src/backend/commands/tablecmds.c), and those that rewrite.


def _at_subcommand_effect(name: str) -> tuple[LockMode, WorkClass, bool] | None:
    share_update = {
        "AT_SetStatistics", "AT_ClusterOn", "AT_DropCluster", "AT_SetRelOptions",
        "AT_ResetRelOptions", "AT_SetOptions", "AT_ResetOptions",
        "AT_AttachPartition", "AT_SetExpression",
    }
    share_row = {
        "AT_EnableTrig", "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig", "AT_EnableTrigAll",
        "AT_EnableTrigUser", "AT_DisableTrig", "AT_DisableTrigAll", "AT_DisableTrigUser",
    }
    rewrite = {"AT_SetLogged", "AT_SetUnLogged", "AT_SetTableSpace", "AT_SetAccessMethod"}
    if name in share_update:
        return LockMode.SHARE_UPDATE_EXCLUSIVE, WorkClass.METADATA, False
    if name in share_row:
        return LockMode.SHARE_ROW_EXCLUSIVE, WorkClass.METADATA, False
    if name in rewrite:
        return LockMode.ACCESS_EXCLUSIVE, WorkClass.REWRITE, True
    if name in {"AT_ReplicaIdentity", "AT_AddIdentity", "AT_AddInherit", "AT_DropInherit", "AT_ChangeOwner", "AT_SetStorage",
                "AT_DropIdentity", "AT_SetIdentity", "AT_DropExpression", "AT_ColumnDefault"}:
        return LockMode.ACCESS_EXCLUSIVE, WorkClass.METADATA, False
    return None


@_handles(c.RawStatement)
def _raw(ch: c.RawStatement, ctx: _Ctx) -> Effect:
    conservative = Effect(
        ch, tuple(RelationLock(r, RelationRole.TABLE, LockMode.ACCESS_EXCLUSIVE) for r in ch.relations),
        WorkClass.UNKNOWN, certainty=Certainty.CONSERVATIVE,
        notes=(f"not modelled ({ch.statement_type or 'unparsed SQL'}): assumed to lock its tables ACCESS EXCLUSIVE",),
    )
    try:
        stmts = parse_sql(ch.sql) if ch.sql else ()
    except Exception:
        return conservative
    if len(stmts) != 1:
        return conservative
    node = stmts[0].stmt
    if isinstance(node, ast.AlterTableStmt):
        verdicts = [_at_subcommand_effect(cmd.subtype.name) for cmd in node.cmds or ()]
        if verdicts and all(v is not None for v in verdicts):
            known = [v for v in verdicts if v is not None]
            mode = max(v[0] for v in known)
            rewrites = any(v[2] for v in known)
            work = WorkClass.REWRITE if rewrites else WorkClass.METADATA
            return replace(
                conservative, locks=_on(ch.table, mode), work=work, rewrites_table=rewrites,
                certainty=Certainty.KNOWN, notes=(),
            )
        return conservative
    if isinstance(node, ast.LockStmt) and node.mode in {m.value for m in LockMode}:
        # LOCK TABLE takes exactly the mode it names (lockcmds.c); the numbering is PostgreSQL's.
        mode = LockMode(node.mode)
        return replace(
            conservative, locks=tuple(replace(lk, mode=mode) for lk in conservative.locks),
            work=WorkClass.METADATA, certainty=Certainty.KNOWN,
            notes=("held until the transaction ends",),
        )
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_INDEX:
        # ALTER INDEX ... RENAME takes SHARE UPDATE EXCLUSIVE on the index (PostgreSQL 12+).
        return replace(
            conservative,
            locks=tuple(
                RelationLock(lk.relation, RelationRole.INDEX, LockMode.SHARE_UPDATE_EXCLUSIVE)
                for lk in conservative.locks
            ),
            work=WorkClass.METADATA, certainty=Certainty.KNOWN, notes=(),
        )
    if isinstance(node, ast.VacuumStmt):
        opts = {o.defname for o in node.options or ()}
        if node.is_vacuumcmd:
            return replace(
                conservative, locks=tuple(replace(lk, mode=LockMode.SHARE_UPDATE_EXCLUSIVE) for lk in conservative.locks),
                work=WorkClass.SCAN, transaction=TransactionUse.OUTSIDE_ONLY, certainty=Certainty.KNOWN,
                notes=("plain VACUUM runs beside reads and writes",) if "full" not in opts else (),
            )
        return replace(  # ANALYZE
            conservative, locks=tuple(replace(lk, mode=LockMode.SHARE_UPDATE_EXCLUSIVE) for lk in conservative.locks),
            work=WorkClass.SCAN, certainty=Certainty.KNOWN, notes=(),
        )
    if isinstance(node, ast.GrantStmt):
        # GRANT / REVOKE on a table take ACCESS SHARE on it (checked on 18): reads and writes go on
        return replace(
            conservative,
            locks=tuple(replace(lk, mode=LockMode.ACCESS_SHARE) for lk in conservative.locks),
            work=WorkClass.METADATA, certainty=Certainty.KNOWN, notes=(),
        )
    if isinstance(node, ast.CommentStmt):
        return replace(
            conservative, locks=tuple(replace(lk, mode=LockMode.SHARE_UPDATE_EXCLUSIVE) for lk in conservative.locks),
            work=WorkClass.METADATA, certainty=Certainty.KNOWN, notes=(),
        )
    into = (
        node.into if isinstance(node, ast.CreateTableAsStmt) and node.objtype == ObjectType.OBJECT_TABLE
        else None
    )
    if into is not None and into.rel is not None:
        # CREATE [TEMP] TABLE ... AS reads its query under ACCESS SHARE (checked on 15 and 18); the
        # new table is invisible to others until commit (a temporary one, ever).
        created = QualifiedName(str(into.rel.relname), into.rel.schemaname)
        return replace(
            conservative,
            locks=tuple(
                RelationLock(r, RelationRole.TABLE, LockMode.ACCESS_EXCLUSIVE, blocking=False)
                if r == created else RelationLock(r, RelationRole.TABLE, LockMode.ACCESS_SHARE)
                for r in ch.relations
            ),
            work=WorkClass.METADATA if into.skipData else WorkClass.SCAN,
            certainty=Certainty.KNOWN, notes=(),
        )
    if isinstance(node, ast.SelectStmt):
        return replace(
            conservative, locks=tuple(replace(lk, mode=LockMode.ACCESS_SHARE) for lk in conservative.locks),
            work=WorkClass.SCAN, certainty=Certainty.KNOWN, notes=(),
        )
    if isinstance(
        node,
        (ast.CreateFunctionStmt, ast.CreateExtensionStmt, ast.CreateSchemaStmt, ast.CreateSeqStmt,
         ast.GrantStmt, ast.CreateRoleStmt, ast.AlterSeqStmt, ast.CreateDomainStmt),
    ) and not ch.relations:
        return replace(conservative, work=WorkClass.METADATA, certainty=Certainty.KNOWN, notes=())
    return conservative


def kinds_without_knowledge() -> list[type[Change]]:
    """Change classes with no registered handler (must be empty; tested)."""
    return [k for k in c.CHANGE_TYPES if k not in _HANDLERS]


def describe(effects: Iterable[Effect]) -> list[str]:
    """One line per effect, for logs and error messages."""
    out = []
    for eff in effects:
        locks = ", ".join(f"{lk.mode.sql_name} on {lk.relation}" for lk in eff.locks) or "no table lock"
        out.append(f"{eff.change.kind}: {locks}; work: {eff.work.value}")
    return out
