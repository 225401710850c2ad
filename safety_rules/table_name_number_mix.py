"""Table names that mix plural and singular (``customers``, ``orders``, ``invoice``).

## What it does
Reported by ``helios-migrate review`` (models and live database) as information for each table
whose name's last word is singular when most tables are plural, or plural when most are singular.
Words whose number the spelling does not tell (``status``, ``data``, ``series``, ``inventory``),
collective names (``audit_log``, ``event_queue``) and
tools' tables (``alembic_version``) are left out; at least two tables must follow the majority, and
a tie reports nothing.

## Why is this bad?
Nothing breaks today: the cost is every query written by hand, every ORM mapping and every
dashboard that guesses a table name wrong.  The fix only gets dearer: renaming a table a live
application uses is a breaking change for every client (HM302: a view under the old name, or an
expand-contract over two releases).  Settle the convention while the table is new.

## Example
```sql
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE products (id bigint PRIMARY KEY);
CREATE TABLE invoice (id bigint PRIMARY KEY);
```

## Use instead
```sql
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE products (id bigint PRIMARY KEY);
CREATE TABLE invoices (id bigint PRIMARY KEY);
```

For a table already in use, keep its name and suppress the note for it
(``ignore = ["HM617:invoice"]``), or rename it over two releases behind a view.  In SQLAlchemy:
```python
class Invoice(Base):
    __tablename__ = "invoices"
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._design import number_of, user_tables, words

CODE = "HM617"
NAME = "table-name-number-mix"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER

MIN_MAJORITY = 2
SHOWN = 4


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    forms: dict[str, list[str]] = {"plural": [], "singular": []}
    tables = {}
    for table in user_tables(ctx.schema):
        parts = words(table.name.name)
        form = number_of(parts[-1]) if parts else None
        if form is not None:
            forms[form].append(table.name.name)
            tables[table.name.name] = table
    plural, singular = forms["plural"], forms["singular"]
    if len(plural) == len(singular):
        return
    majority, minority, form = (plural, singular, "plural") if len(plural) > len(singular) else (singular, plural, "singular")
    if len(majority) < MIN_MAJORITY:
        return
    examples = ", ".join(majority[:SHOWN]) + (", ..." if len(majority) > SHOWN else "")
    for name in minority:
        table = tables[name]
        yield SchemaViolation(
            f"table {table.name} is {'singular' if form == 'plural' else 'plural'} while {len(majority)} of "
            f"{len(majority) + len(minority)} tables are {form} ({examples}): hand-written queries and "
            "mappings guess its name wrong, and renaming it later breaks every client",
            table=table.name,
            help=f"Name new tables {form}. For a table in use, keep the name and suppress this note "
            f"(ignore = [\"{CODE}:{table.name.name}\"]), or rename it over two releases behind a view "
            "(HM302).",
        )
