"""A table or column name that must be double-quoted in every query (mixed case, spaces, keywords).

## What it does
Reported by ``helios-migrate review`` (models and live database) as information for each table
and column whose name PostgreSQL does not read back unchanged when written bare: upper-case
letters (``"CustomerId"``), spaces or punctuation (``"Placed At"``), a leading digit, or a
reserved word (``"user"``, ``"order"``).

## Why is this bad?
PostgreSQL folds unquoted names to lower case, so ``SELECT CustomerId FROM Orders`` looks for
``customerid`` in ``orders`` and fails; a reserved word is a syntax error unquoted.  Every
hand-written query, psql session, report and BI tool must quote the name exactly, and the first
one that does not fails on the live system.  Renaming later is a breaking change for every client
(HM301, HM302).

## Example
```sql
CREATE TABLE "Customers" (id bigint PRIMARY KEY, "Email" text);
```

## Use instead
```sql
CREATE TABLE customers (id bigint PRIMARY KEY, email text);
```

In SQLAlchemy, keep the Python attribute as you like and give the column a lower-case
snake_case name: ``email: Mapped[str] = mapped_column("email")``.  For a name in use, rename over
two releases (expand-contract) or suppress the note for it.
```python
class Customer(Base):
    __tablename__ = "customers"
    Email: Mapped[str | None] = mapped_column("email", Text)
```
"""

from __future__ import annotations

from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind
from helios_migrate.sqltext import quote_ident

from ._design import user_tables

CODE = "HM618"
NAME = "quoted-identifier"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER


def _why(name: str) -> str:
    if name != name.lower():
        return "has upper-case letters (unquoted, PostgreSQL folds it to lower case)"
    if any(not (ch.isalnum() or ch == "_") for ch in name) or name[:1].isdigit():
        return "has characters a bare name cannot hold"
    return "is an SQL keyword"


_HELP = (
    "Use lower-case snake_case names for new tables and columns. For a name in use, rename it over "
    "two releases (expand-contract, HM301 / HM302) or suppress this note for it."
)


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in user_tables(ctx.schema):
        name = table.name.name
        if quote_ident(name) != name:
            yield SchemaViolation(
                f"table {quote_ident(name)} {_why(name)}: every query must write it double-quoted, exactly",
                table=table.name,
                help=_HELP,
            )
        for col in table.columns:
            if quote_ident(col.name) != col.name:
                yield SchemaViolation(
                    f"column {table.name}.{quote_ident(col.name)} {_why(col.name)}: every query must write it "
                    "double-quoted, exactly",
                    table=table.name,
                    column=col.name,
                    help=_HELP,
                )
