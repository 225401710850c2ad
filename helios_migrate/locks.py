"""PostgreSQL table-level lock modes, their conflicts, and what each one blocks.

The conflict table is PostgreSQL's own (``src/backend/storage/lmgr/lock.c``, documented in
"Explicit Locking", table 13.2).  What a lock "blocks" is stated from the point of view of an
application: plain reads (``SELECT`` takes ACCESS SHARE), writes (``INSERT``/``UPDATE``/``DELETE``
take ROW EXCLUSIVE), and other schema changes or maintenance (``VACUUM``, ``ANALYZE``,
``CREATE INDEX CONCURRENTLY``, most ``ALTER TABLE`` forms take SHARE UPDATE EXCLUSIVE or stronger).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable
from typing import Protocol, TypeVar


class Blocked(str, enum.Enum):
    """What holding a lock makes an application wait for, from the most to the least disruptive."""

    READS_AND_WRITES = "reads and writes"
    WRITES = "writes"
    DDL = "other DDL and VACUUM only"
    NOTHING = "nothing an application does"

    @property
    def short(self) -> str:
        """The compact form for narrow tables (a revision header)."""
        return _SHORT_BLOCKED[self]

    @property
    def blocks_application(self) -> bool:
        """Do reads or writes of the application wait?"""
        return self in (Blocked.READS_AND_WRITES, Blocked.WRITES)


_SHORT_BLOCKED = {
    Blocked.READS_AND_WRITES: "reads+writes",
    Blocked.WRITES: "writes",
    Blocked.DDL: "DDL only",
    Blocked.NOTHING: "-",
}


class LockMode(enum.IntEnum):
    """Table-level lock modes, ordered from weakest to strongest."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def sql_name(self) -> str:
        """``"ACCESS EXCLUSIVE"``: the name used in PostgreSQL's documentation and ``LOCK``."""
        return self.name.replace("_", " ")

    @property
    def pg_locks_name(self) -> str:
        """``"AccessExclusiveLock"``: the spelling in ``pg_locks.mode``."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Lock"

    @classmethod
    def from_pg_locks(cls, mode: str) -> LockMode:
        """Parse ``pg_locks.mode`` (``"ShareUpdateExclusiveLock"``)."""
        for member in cls:
            if member.pg_locks_name == mode:
                return member
        raise ValueError(f"not a table lock mode: {mode!r}")

    def conflicts_with(self, other: LockMode) -> bool:
        return other in CONFLICTS[self]

    @property
    def blocks_reads(self) -> bool:
        """Does holding this lock make a plain ``SELECT`` wait?"""
        return self.conflicts_with(LockMode.ACCESS_SHARE)

    @property
    def blocks_writes(self) -> bool:
        """Does holding this lock make ``INSERT``/``UPDATE``/``DELETE`` wait?"""
        return self.conflicts_with(LockMode.ROW_EXCLUSIVE)

    @property
    def blocks_ddl(self) -> bool:
        """Does it block other schema changes and maintenance (VACUUM, ANALYZE, CREATE INDEX ...)?"""
        return self.conflicts_with(LockMode.SHARE_UPDATE_EXCLUSIVE)

    @property
    def blocks_select_for_update(self) -> bool:
        return self.conflicts_with(LockMode.ROW_SHARE)

    @property
    def blocked(self) -> Blocked:
        """What holding this lock makes wait (a value to branch on; ``.value`` is the phrase)."""
        if self.blocks_reads:
            return Blocked.READS_AND_WRITES
        if self.blocks_writes:
            return Blocked.WRITES
        if self.blocks_ddl:
            return Blocked.DDL
        return Blocked.NOTHING

    def blocked_summary(self) -> str:
        """A short phrase for humans: ``"reads and writes"``, ``"writes"``, ``"other DDL only"``."""
        return self.blocked.value


class HeldLock(Protocol):
    """Anything that names a relation and a lock mode on it (a predicted or an observed lock)."""

    @property
    def relation(self) -> Hashable: ...

    @property
    def mode(self) -> LockMode: ...


L = TypeVar("L", bound=HeldLock)


def strongest_per_relation(locks: Iterable[L]) -> dict[Hashable, L]:
    """The strongest lock on each relation, in the order relations first appear (of equal modes,
    the first is kept)."""
    strongest: dict[Hashable, L] = {}
    for lock in locks:
        held = strongest.get(lock.relation)
        if held is None or lock.mode > held.mode:
            strongest[lock.relation] = lock
    return strongest


_M = LockMode
CONFLICTS: dict[LockMode, frozenset[LockMode]] = {
    _M.ACCESS_SHARE: frozenset({_M.ACCESS_EXCLUSIVE}),
    _M.ROW_SHARE: frozenset({_M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}),
    _M.ROW_EXCLUSIVE: frozenset({_M.SHARE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}),
    _M.SHARE_UPDATE_EXCLUSIVE: frozenset(
        {_M.SHARE_UPDATE_EXCLUSIVE, _M.SHARE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}
    ),
    _M.SHARE: frozenset(
        {_M.ROW_EXCLUSIVE, _M.SHARE_UPDATE_EXCLUSIVE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}
    ),
    _M.SHARE_ROW_EXCLUSIVE: frozenset(
        {_M.ROW_EXCLUSIVE, _M.SHARE_UPDATE_EXCLUSIVE, _M.SHARE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE,
         _M.ACCESS_EXCLUSIVE}
    ),
    _M.EXCLUSIVE: frozenset(
        {_M.ROW_SHARE, _M.ROW_EXCLUSIVE, _M.SHARE_UPDATE_EXCLUSIVE, _M.SHARE, _M.SHARE_ROW_EXCLUSIVE,
         _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}
    ),
    _M.ACCESS_EXCLUSIVE: frozenset(_M),
}
del _M
