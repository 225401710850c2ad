"""An index no query has used since the statistics were last reset.

## What it does
Reported by ``helios-migrate review`` on a live database for every valid index whose
``pg_stat_user_indexes.idx_scan`` is 0: no index scan, bitmap scan or index-only scan has read it
since the statistics window began (``pg_stat_database.stats_reset``, else the server's start; from
PostgreSQL 15 the counters also survive a clean restart, so the window is at least that long).  The
finding gives the window's start and the index's size.  Indexes that enforce something (primary
key, unique, exclusion) are never reported, nor an index that is the only one serving a foreign
key's lookups (a ``DELETE`` on the referenced table needs it even if it has not happened yet).
Within the first 7 days of statistics the finding is info: the window is too short to be sure.
The fix is ``DROP INDEX CONCURRENTLY`` (its downgrade builds the index again, concurrently).

## Why is this bad?
Every ``INSERT``, every non-HOT ``UPDATE`` and every ``DELETE``'s vacuum maintains every index of
the table: an unused index costs write latency, WAL, disk, cache and backup time, and can stop
updates from being HOT.  The counters are per server: queries that run only on a read replica,
or only at month end, do not show on the primary.  Check ``pg_stat_user_indexes`` on each replica,
and keep the statistics window longer than your slowest cycle, before dropping.

## Example
```sql
CREATE TABLE visits (id bigint PRIMARY KEY, referrer text);
CREATE INDEX visits_referrer_idx ON visits (referrer);
```

## Use instead
```sql
CREATE TABLE visits (id bigint PRIMARY KEY, referrer text);
```

In Alembic, on an existing table (``helios-migrate review --write-revision --fix HM608`` writes it):
```python
with op.get_context().autocommit_block():
    op.drop_index("visits_referrer_idx", table_name="visits",
                  postgresql_concurrently=True, if_exists=True)
```
and remove the index from the model, or the next autogenerate builds it again.
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind
from helios_migrate.schema_model import Index, Table

from ._schema import describe, drop_index_fix, index_label

CODE = "HM608"
NAME = "unused-index"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER

SURE_AFTER_DAYS = 7
"""A statistics window shorter than this makes the finding info: too short to be sure."""


def _serves_foreign_key(table: Table, index: Index) -> bool:
    """Is ``index`` the only valid index leading with some foreign key's columns?"""
    for fk in table.foreign_keys:
        serving = [ix for ix in table.indexes if ix.valid and ix.leads_with(fk.columns)]
        if serving == [index]:
            return True
    return False


def _window(ctx: ReviewContext) -> tuple[str, float | None]:
    since, now = ctx.schema.stats_since, ctx.schema.observed_at
    if since is None or now is None:
        return "the statistics reset", None
    days = (now - since).total_seconds() / 86400
    span = f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours" if days >= 2 / 24 else f"{days * 1440:.0f} minutes"
    return f"{since:%Y-%m-%d %H:%M %Z}".strip() + f" ({span} ago)", days


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    if not ctx.live:
        return
    since, days = _window(ctx)
    short = days is None or days < SURE_AFTER_DAYS
    for table in ctx.schema.tables:
        for ix in table.indexes:
            if ix.scans != 0 or not ix.valid or ix.unique or ix.primary or ix.constraint is not None:
                continue
            if _serves_foreign_key(table, ix):
                continue
            drops, recreate = drop_index_fix(table, ix)
            caution = (
                f" Statistics cover less than {SURE_AFTER_DAYS} days: wait before deciding." if short else ""
            )
            yield SchemaViolation(
                f"{describe(table)}: index {index_label(ix)} has not been scanned since {since}: "
                "every write maintains it for no read",
                table=table.name,
                column=ix.elements[0] if len(ix.elements) == 1 else None,
                help="Drop it concurrently, after checking pg_stat_user_indexes on every read replica "
                "(the counters are per server) and that no periodic job needs it." + caution
                + " If the models declare it, remove it there too, or the next autogenerate builds it again.",
                fix=drops,
                recreate=recreate,
                severity=Severity.INFO if short else None,
            )
