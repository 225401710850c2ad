"""A table or index much larger than its live rows need (estimated bloat).

## What it does
Reported (info) by ``helios-migrate review`` on a live database when the estimated free space
inside a table's heap, or a B-tree index, is at least half of its size and at least 8 MB.  The
estimate is the one DBAs use (as in the pgexperts and ioguide bloat queries): the pages the
rows would fill, from ``reltuples``, the columns' average widths and NULL fractions in
``pg_stats``, the tuple headers and alignment, the page header and the fillfactor, compared with
``relpages``.  It needs fresh statistics (``ANALYZE``); tables with a column without statistics,
and indexes on expressions, are left out.  B-tree deduplication (PostgreSQL 13+) makes indexes
with many equal keys smaller than the estimate: their bloat is under-reported, never invented.
For an index the fix is ``REINDEX INDEX CONCURRENTLY`` (builds a fresh copy beside the old one,
no write blocked).  A table has no planned fix: rebuilding it online is a tool's job.

## Why is this bad?
Scans read the empty space too: a sequential scan of a table that is 75% free space reads four
times the pages it needs, an index scan touches more pages, and both crowd the cache.  Space left
by a one-off mass ``DELETE`` is reused by later inserts and updates; space that only grows points
at a vacuum that cannot keep up (long transactions, autovacuum settings).  ``VACUUM FULL`` and
``CLUSTER`` return it but hold ``ACCESS EXCLUSIVE`` for the whole rewrite: reads wait too.

## Example
```sql
CREATE TABLE events (id bigint PRIMARY KEY, payload text);
INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 400000) g;
DELETE FROM events WHERE id % 4 <> 0;
VACUUM ANALYZE events;
```

## Use instead
```sql
CREATE TABLE events (id bigint PRIMARY KEY, payload text);
INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 400000) g;
VACUUM ANALYZE events;
```

For an index, in Alembic (outside the migration transaction; review prints the statement):
```python
with op.get_context().autocommit_block():
    op.execute("REINDEX INDEX CONCURRENTLY events_pkey")
```
For a table: ``pg_repack`` or ``pg_squeeze`` rebuild it online; or leave the space for reuse.
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.changes import QualifiedName, Reindex, ReindexTarget
from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind, format_bytes

from ._schema import describe

CODE = "HM612"
NAME = "bloat"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER

MIN_BLOAT_BYTES = 8 * 1024 * 1024
MIN_BLOAT_SHARE = 0.5


def _bloated(size: int | None, bloat: int | None) -> bool:
    return bool(size) and bloat is not None and bloat >= MIN_BLOAT_BYTES and bloat >= MIN_BLOAT_SHARE * (size or 0)


def _share(size: int, bloat: int) -> str:
    return f"~{format_bytes(bloat)} of {format_bytes(size)} ({bloat / size:.0%})"


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    if not ctx.live:
        return
    for table in ctx.schema.tables:
        if table.size_bytes is not None and _bloated(table.size_bytes, table.bloat_bytes):
            assert table.bloat_bytes is not None
            yield SchemaViolation(
                f"{describe(table)}: an estimated {_share(table.size_bytes, table.bloat_bytes)} of the "
                "table is free space: every sequential scan reads it",
                table=table.name,
                help="If a one-off DELETE left it, later writes reuse it. To return it without blocking "
                "reads and writes, rebuild the table online with pg_repack or pg_squeeze (VACUUM FULL "
                "and CLUSTER hold ACCESS EXCLUSIVE for the whole rewrite). If it keeps growing, look "
                "for long transactions and autovacuum falling behind.",
            )
        for ix in table.indexes:
            if ix.name is None or not ix.valid or not _bloated(ix.size_bytes, ix.bloat_bytes):
                continue
            assert ix.size_bytes is not None and ix.bloat_bytes is not None
            yield SchemaViolation(
                f"{describe(table)}: index {ix.name} ({', '.join(ix.elements)}): an estimated "
                f"{_share(ix.size_bytes, ix.bloat_bytes)} is free space",
                table=table.name,
                column=ix.elements[0] if len(ix.elements) == 1 else None,
                help="Rebuild it concurrently: REINDEX INDEX CONCURRENTLY builds a fresh copy beside it "
                "and swaps them, blocking no reads or writes (it needs the index's size again in free "
                "disk while it runs).",
                fix=(Reindex(ReindexTarget.INDEX, QualifiedName(ix.name, table.name.schema), concurrently=True),),
            )
