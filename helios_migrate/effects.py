"""What a change does to a live database: the vocabulary of the lock knowledge base."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .changes import Change, QualifiedName
from .locks import LockMode


class WorkClass(str, enum.Enum):
    """The work done while the lock is held; it decides how long the lock is held."""

    METADATA = "metadata"
    """Catalog-only: milliseconds, whatever the table size."""
    SCAN = "scan"
    """Reads every row (validation) without writing the table."""
    REWRITE = "rewrite"
    """Writes a new copy of the table (new relfilenode) and rebuilds all its indexes."""
    INDEX_BUILD = "index build"
    """Reads the table and builds an index."""
    ROW_WRITES = "row writes"
    """Writes rows (data migrations): row locks, WAL and bloat proportional to rows touched."""
    UNKNOWN = "unknown"


class RelationRole(str, enum.Enum):
    TABLE = "table"
    REFERENCED_TABLE = "referenced table"
    INDEX = "index"
    PARENT = "parent table"
    PARTITION = "partition"
    VIEW = "view"
    TYPE = "type"


class TransactionUse(str, enum.Enum):
    ANY = "any"
    """May run inside or outside a transaction block."""
    OUTSIDE_ONLY = "outside transaction only"
    """PostgreSQL refuses it inside a transaction block (CONCURRENTLY, VACUUM)."""
    COMMIT_BEFORE_USE = "commit before use"
    """Allowed in a transaction, but its result cannot be used until committed (enum ADD VALUE)."""


class Certainty(str, enum.Enum):
    KNOWN = "known"
    """Fully determined by the statement and the server version."""
    CATALOG = "catalog"
    """Determined from the live server's catalog (pg_cast, column types, constraints)."""
    CONSERVATIVE = "conservative"
    """Offline guess that assumes the worst; a database connection would make it exact."""


@dataclass(frozen=True)
class RelationLock:
    relation: QualifiedName
    role: RelationRole
    mode: LockMode
    blocking: bool = True
    """False when no other session can be using the relation: a table or view created by the same
    statement, or an index already marked dead (``DROP INDEX CONCURRENTLY``'s final lock)."""


@dataclass(frozen=True)
class IndexRebuild:
    """An index that a change rebuilds, and why (from the catalog)."""

    index: QualifiedName
    reason: str


@dataclass(frozen=True)
class Effect:
    """The knowledge base's answer for one change on one server version."""

    change: Change
    locks: tuple[RelationLock, ...]
    work: WorkClass
    rewrites_table: bool = False
    builds_index: bool = False
    transaction: TransactionUse = TransactionUse.ANY
    certainty: Certainty = Certainty.KNOWN
    notes: tuple[str, ...] = ()
    safer_alternative: str | None = None
    unsupported: str | None = None
    """Why the server version rejects this statement, when it does (e.g. a PostgreSQL 18 form on 15)."""
    rebuilt_indexes: tuple[QualifiedName, ...] = ()
    """Existing indexes that get a new file (relfilenode) while the lock is held, named from the
    catalog: every index of a rewritten table, or the indexes a type change that keeps the table
    still rebuilds (operator class, collation, expression or predicate on the column)."""

    @property
    def rebuilds_indexes_only(self) -> bool:
        """The table keeps its file but indexes are rebuilt (an index rebuild, not a rewrite)."""
        return bool(self.rebuilt_indexes) and not self.rewrites_table

    @property
    def table_lock(self) -> RelationLock | None:
        """The lock on the change's own table (or the strongest lock when it has no table)."""
        for lock in self.locks:
            if lock.role in (RelationRole.TABLE, RelationRole.PARENT):
                return lock
        return max(self.locks, key=lambda lk: lk.mode, default=None)

    @property
    def strongest(self) -> LockMode | None:
        return max((lk.mode for lk in self.locks), default=None)

    def _blocking(self) -> list[RelationLock]:
        return [lk for lk in self.locks if lk.blocking and lk.role is not RelationRole.TYPE]

    @property
    def blocks_reads(self) -> bool:
        """Does a plain SELECT on a relation involved wait while this runs?"""
        return any(lk.mode.blocks_reads for lk in self._blocking())

    @property
    def blocks_writes(self) -> bool:
        """Do INSERT/UPDATE/DELETE on a relation involved wait while this runs?"""
        return any(lk.mode.blocks_writes for lk in self._blocking())
