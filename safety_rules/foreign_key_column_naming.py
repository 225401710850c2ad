"""A foreign key column not named for the table it references (``<table singular>_id``).

## What it does
Reported by ``helios-migrate review`` (models and live database) as information for a
single-column foreign key whose column is not named ``<referenced table, singular>_<referenced
column>`` (``customer_id`` for ``customers (id)``, ``product_sku`` for ``products (sku)``), nor
ends with it (``billing_customer_id``), nor is the referenced column's own name for a natural key
(``sku`` referencing ``products (sku)``).  Role names are expected, and not reported, where a table
references the same table more than once (``buyer_id`` and ``seller_id`` to ``users``) or itself
(``parent_id``), and for a foreign key that is the table's primary key (a one-to-one extension).

## Why is this bad?
A reader, a query builder and a reviewer find the join by the name: ``orders.customer`` or
``orders.cust`` hides that it is a key, and ``orders.client_id`` referencing ``customers``
suggests a table that does not exist.  Nothing fails, but every hand-written join is a lookup in
the catalog, and renaming the column later is a breaking change (HM301).

## Example
```sql
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, client bigint REFERENCES customers (id));
CREATE INDEX orders_client_idx ON orders (client);
```

## Use instead
```sql
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
```

If the name is a role on purpose (``author_id`` referencing ``users``), keep it and suppress the
note for the column (``ignore = ["HM619:posts.author_id"]``).  In SQLAlchemy:
```python
customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._design import singular_name, user_tables

CODE = "HM619"
NAME = "foreign-key-column-naming"
SEVERITY = Severity.INFO
KIND = RuleKind.OTHER


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in user_tables(ctx.schema):
        targets = Counter(fk.references.name for fk in table.foreign_keys)
        for fk in table.foreign_keys:
            if len(fk.columns) != 1 or len(fk.referenced_columns) != 1:
                continue
            (column,), (target,) = fk.columns, fk.referenced_columns
            if fk.references.name == table.name.name or targets[fk.references.name] > 1:
                continue
            if tuple(table.primary_key) == fk.columns:
                continue
            expected = f"{singular_name(fk.references.name)}_{target.lower()}"
            name = column.lower()
            if name == expected or name.endswith(f"_{expected}") or (target != "id" and name == target.lower()):
                continue
            yield SchemaViolation(
                f"{table.name}.{column} references {fk.references.name} ({target}) but is not named "
                f"{expected}: readers and query builders find joins by the name",
                table=table.name,
                column=column,
                help=f"Name it {expected} (or <role>_{expected}). If the name is a role on purpose, keep it and "
                f"suppress this note for the column (ignore = [\"{CODE}:{table.name.name}.{column}\"]); "
                "renaming a column in use is a breaking change (HM301).",
            )
