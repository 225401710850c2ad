"""Prediction against observation, per statement.

Errors (the claim of safety was wrong):

* a table got a new ``relfilenode`` although no change of the statement was predicted to rewrite it;
* an existing index was rebuilt although no change was predicted to build an index;
* a lock on a relation is stronger than the lock predicted on it (for an index the knowledge base
  does not name, stronger than the lock predicted on its table), or a lock that blocks writes was
  taken on a table the prediction does not mention.

The copies ``REINDEX ... CONCURRENTLY`` makes (``<index>_ccnew``, then the old index renamed
``<index>_ccold``) are locked ACCESS EXCLUSIVE only while no query can use them (not yet valid, or
already dead): such a lock is information.

Everything else that differs -- a predicted lock that was weaker in reality or not seen at all, a
rewrite predicted but not observed, an unpredicted weak lock -- is information.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..changes import CreateIndex, Reindex
from ..effects import Effect, RelationRole
from ..locks import LockMode
from .trace import HeldLock, TracedStatement

_REINDEX_COPY = re.compile(r"_cc(new|old)\d*$")


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    """Stable short name: ``unpredicted-rewrite``, ``lock-stronger``, ``schema-mismatch`` ..."""
    message: str
    revision: str | None = None
    statement: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "revision": self.revision,
            "statement": self.statement,
        }


def predicted_locks(effects: Iterable[Effect]) -> dict[str, LockMode]:
    """The strongest predicted lock per relation name (types excluded)."""
    out: dict[str, LockMode] = {}
    for eff in effects:
        for lock in eff.locks:
            if lock.role is RelationRole.TYPE:
                continue
            name = lock.relation.name
            if name not in out or lock.mode > out[name]:
                out[name] = lock.mode
    return out


def _tables_of_effects(effects: Iterable[Effect]) -> set[str]:
    names: set[str] = set()
    for eff in effects:
        on = getattr(eff.change, "on", None)
        if on is not None:
            names.add(on.name)
        for lock in eff.locks:
            if lock.role in (RelationRole.TABLE, RelationRole.PARENT, RelationRole.PARTITION):
                names.add(lock.relation.name)
    return names


def compare_statement(st: TracedStatement) -> list[Finding]:
    """Findings for one traced statement."""
    if st.error is not None:
        return []
    out: list[Finding] = []

    def add(sev: Severity, code: str, msg: str) -> None:
        out.append(Finding(sev, code, msg, st.revision, st.index))

    if st.prediction_error is not None and (st.locks or st.rewritten):
        add(Severity.INFO, "no-prediction", st.prediction_error)
        return out
    effects = st.effects
    predicted = predicted_locks(effects)
    rewrites = any(e.rewrites_table for e in effects)
    builds_index = any(e.builds_index or e.rewrites_table for e in effects)
    metadata_only = all(e.work.value == "metadata" for e in effects)

    for name in st.rewritten:
        kind = st.rewritten_kinds.get(name, "r")
        if kind in ("i", "I"):
            if not builds_index:
                add(Severity.ERROR, "unpredicted-index-rebuild",
                    f"index {name} was rebuilt (new relfilenode) but no index build was predicted")
        elif not rewrites:
            what = "metadata-only" if metadata_only else f"{', '.join(sorted({e.work.value for e in effects})) or 'no work'}"
            add(Severity.ERROR, "unpredicted-rewrite",
                f"table {name} was rewritten (new relfilenode) but the statement was predicted {what}")
    if rewrites and not any(st.rewritten_kinds.get(n, "r") not in ("i", "I") for n in st.rewritten):
        add(Severity.INFO, "predicted-rewrite-not-seen",
            "a table rewrite was predicted but no existing table got a new relfilenode")

    # The index a CREATE INDEX makes is locked ACCESS EXCLUSIVE by the transaction that creates it
    # (index_create), before any other session can see it: nothing waits on that lock.
    created = {e.change.name for e in effects if isinstance(e.change, CreateIndex) and e.change.name}
    reindexes_concurrently = any(
        isinstance(e.change, Reindex) and e.change.concurrently for e in effects
    )
    for name, held in sorted(st.locks.items()):
        if name in created and held.kind in ("i", "I"):
            continue
        if reindexes_concurrently and held.kind in ("i", "I") and _REINDEX_COPY.search(name):
            add(Severity.INFO, "reindex-copy-lock",
                f"{held.mode.sql_name} on {name}, the copy REINDEX CONCURRENTLY builds or drops "
                "while no query can use it: it blocks nothing")
            continue
        out.extend(_compare_lock(st, name, held, predicted))
    return out


def _compare_lock(
    st: TracedStatement, name: str, held: HeldLock, predicted: dict[str, LockMode]
) -> list[Finding]:
    out: list[Finding] = []
    want = predicted.get(name)
    is_index = held.kind in ("i", "I")
    if want is None and held.kind == "S":
        # A sequence owned by a column is locked with its table (created, dropped, renamed with it).
        return out
    if want is None and is_index and held.table is not None:
        want = predicted.get(held.table)
        if want is not None and held.mode > want:
            # An index lock stronger than its table's: queries that plan with the index wait.
            sev = Severity.ERROR if held.mode.blocks_writes and not want.blocks_writes else Severity.INFO
            out.append(Finding(sev, "index-lock-stronger",
                               f"{held.mode.sql_name} on index {name} (table {held.table} predicted "
                               f"{want.sql_name}), held {held.held_s * 1000:.0f} ms",
                               st.revision, st.index))
        return out
    if want is None:
        if is_index:
            return out
        known = _tables_of_effects(st.effects)
        if held.mode.blocks_writes and name not in known:
            out.append(Finding(Severity.ERROR, "unpredicted-lock",
                               f"{held.mode.sql_name} on {name} (blocks {held.mode.blocked_summary()}), "
                               f"held {held.held_s * 1000:.0f} ms, was not predicted",
                               st.revision, st.index))
        elif held.mode >= LockMode.SHARE_UPDATE_EXCLUSIVE:
            out.append(Finding(Severity.INFO, "unpredicted-lock",
                               f"{held.mode.sql_name} on {name} was not predicted", st.revision, st.index))
        return out
    if held.mode > want:
        out.append(Finding(Severity.ERROR, "lock-stronger",
                           f"{held.mode.sql_name} on {name} (blocks {held.mode.blocked_summary()}), held "
                           f"{held.held_s * 1000:.0f} ms; predicted {want.sql_name}",
                           st.revision, st.index))
    elif held.mode < want:
        out.append(Finding(Severity.INFO, "lock-weaker",
                           f"{held.mode.sql_name} on {name}; predicted {want.sql_name}",
                           st.revision, st.index))
    return out
