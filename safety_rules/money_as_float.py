"""A money amount stored as a binary floating-point number.

## What it does
Reported by ``helios-migrate review`` (models and live database) for a ``real`` or ``double
precision`` column whose name says it holds money: a word of the name (split at ``_`` and at
case changes) is one of ``price``, ``amount``, ``cost``, ``total``, ``subtotal``, ``balance``,
``fee``, ``tax``, ``salary``, ``wage``, ``revenue``, ``payment``, ``charge``, ``refund``,
``discount``, ``credit``, ``debit``, ``budget``, ``income``, ``expense``, ``money``, ``cash``,
``usd``, ``eur``, ``gbp``.  No fix is planned: the right type (``numeric(p, s)`` or an integer
count of cents) and the conversion of existing values are a decision; change the model and let
autogenerate plan the type change (expand-contract, no long lock).

## Why is this bad?
``real`` and ``double precision`` store binary fractions: 0.1 has no exact value, sums drift
(``0.1 + 0.2 <> 0.3``), and rounding differs between the database, the application and the
report.  Money needs exact decimal arithmetic: ``numeric`` (with a scale), or ``bigint`` cents.
(The ``money`` type is not the answer either: its format and precision follow ``lc_monetary``.)

## Example
```sql
CREATE TABLE invoices (id bigint PRIMARY KEY, total_amount double precision NOT NULL);
```

## Use instead
```sql
CREATE TABLE invoices (id bigint PRIMARY KEY, total_amount numeric(12, 2) NOT NULL);
```

In SQLAlchemy (``Numeric`` gives ``Decimal`` values in Python):
```python
sa.Column("total_amount", sa.Numeric(12, 2), nullable=False)
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from helios_migrate.findings import Severity
from helios_migrate.review_context import ReviewContext, SchemaViolation
from helios_migrate.rule_context import RuleKind

from ._schema import describe, models_hint

CODE = "HM610"
NAME = "money-as-float"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER

FLOAT_TYPES = frozenset({"real", "double precision"})
MONEY_WORDS = frozenset({
    "price", "prices", "amount", "amounts", "cost", "costs", "total", "subtotal", "balance", "fee", "fees",
    "tax", "salary", "wage", "wages", "revenue", "payment", "charge", "refund", "discount", "credit",
    "debit", "budget", "income", "expense", "money", "cash", "usd", "eur", "gbp",
})


def words(name: str) -> list[str]:
    """``totalAmount_usd`` -> ``["total", "amount", "usd"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def review(ctx: ReviewContext) -> Iterator[SchemaViolation]:
    for table in ctx.schema.tables:
        for col in table.columns:
            if col.type not in FLOAT_TYPES or not MONEY_WORDS.intersection(words(col.name)):
                continue
            yield SchemaViolation(
                f"{describe(table)}: column {col.name} holds money as {col.type}: binary floating point "
                "cannot store 0.10 exactly, so sums and comparisons drift",
                table=table.name,
                column=col.name,
                help="Store it as numeric(p, s) (e.g. numeric(12, 2)) or as bigint cents; change the model "
                "and let autogenerate plan the type change (expand-contract, no long lock)."
                + models_hint(ctx, "sa.Numeric(12, 2) instead of sa.Float."),
            )
