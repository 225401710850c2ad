"""Constraints without a long lock: CHECK and FOREIGN KEY as NOT VALID + VALIDATE (with an index
on a new foreign key's columns), UNIQUE and PRIMARY KEY adopting an index built concurrently; the
one-step forms partitioned tables force, with the lock stated."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from .. import changes as c
from ..changes import ConstraintKind
from ..plan import Step, acknowledge
from ..sqltext import index_element_name, quote_ident
from .context import PlanningContext, plans
from .indexes import create_index_step, index_steps, partitions_of
from .sqlgen import constraint_body, constraint_exists, constraint_name, index_name, sql_name


@plans(c.AddConstraint)
def _add_constraint(ch: c.AddConstraint, ctx: PlanningContext) -> list[Step]:
    k = ch.constraint
    name = constraint_name(ch.on, k)
    t, qn = sql_name(ch.on), quote_ident(name)
    drop = f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qn}"
    undone = acknowledge("HM309", reason=f"undo: drops {name}, which this revision added") \
        if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.UNIQUE) else ()
    partitioned = bool(partitions_of(ch.on, ctx))
    plain_reason = ""
    if partitioned and k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        plain_reason = (
            "a UNIQUE or PRIMARY KEY constraint cannot adopt an index built concurrently on a "
            "partitioned table (USING INDEX is refused there)"
        )
    elif partitioned and k.kind is ConstraintKind.FOREIGN_KEY and ctx.version.major < 18:
        plain_reason = f"PostgreSQL {ctx.version} cannot add a NOT VALID foreign key to a partitioned table (18 can)"
    if plain_reason:
        ctx.notes.append(
            f"{ch.on}.{name}: added in one step because {plain_reason}: it checks every row while "
            "it holds a lock that blocks writes (SHARE ROW EXCLUSIVE for a foreign key, SHARE for a "
            "unique index build); run it when the table is quiet"
        )
        support = _fk_index(ch, ctx) if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk else []
        return [*support, ctx.own(
            f"{k.kind.value} {name} on the partitioned table {ch.on}",
            [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(dataclasses.replace(k, name=name))}"],
            inverse=[drop], done_when=constraint_exists(ch.on, name), scan=True, inverse_acknowledged=undone,
            reason=f"in one step: {plain_reason}",
        )]
    if k.kind in (ConstraintKind.UNIQUE, ConstraintKind.PRIMARY_KEY):
        ix = c.CreateIndex(
            on=ch.on, name=name, columns=tuple(quote_ident(x) for x in k.columns), unique=True,
            concurrently=True,
        )
        kind = "PRIMARY KEY" if k.kind is ConstraintKind.PRIMARY_KEY else "UNIQUE"
        return [
            create_index_step(ix, name, ctx, reason=f"the {kind} constraint adopts this index next, "
                               "so its build does not hold a lock that blocks writes"),
            ctx.own(
                f"{kind} constraint {name} on {ch.on} using the index",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {kind} USING INDEX {qn}"
                 + (" DEFERRABLE" if k.deferrable else "")],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=constraint_exists(ch.on, name),
                reason="USING INDEX adopts the built index: ACCESS EXCLUSIVE for a moment only",
            ),
        ]
    if k.kind in (ConstraintKind.FOREIGN_KEY, ConstraintKind.CHECK) and not k.not_valid and k.enforced:
        steps: list[Step] = []
        if k.kind is ConstraintKind.FOREIGN_KEY and ctx.policy.index_on_fk:
            steps.extend(_fk_index(ch, ctx))
        body = constraint_body(dataclasses.replace(k, name=name))
        steps += [
            ctx.own(
                f"{k.kind.value} {name} on {ch.on}, not yet checked for existing rows",
                [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {body} NOT VALID"],
                inverse=[drop],
                inverse_acknowledged=undone,
                done_when=constraint_exists(ch.on, name),
                reason="NOT VALID skips the check of existing rows, so the lock is held for a moment"
                + (" (on both tables)" if k.kind is ConstraintKind.FOREIGN_KEY else ""),
            ),
            ctx.own(
                f"validate {name} on {ch.on}",
                [f"ALTER TABLE {t} VALIDATE CONSTRAINT {qn}"],
                scan=True,
                reason="in its own transaction: VALIDATE takes SHARE UPDATE EXCLUSIVE, reads and writes go on",
                on_failure=(drop,),
                on_failure_description=f"dropped the NOT VALID constraint {name} (existing rows violate it)",
            ),
        ]
        return steps
    step = ctx.own(
        f"{k.kind.value} {name} on {ch.on}",
        [f"ALTER TABLE {t} ADD CONSTRAINT {qn} {constraint_body(k)}" + (" NOT VALID" if k.not_valid else "")],
        inverse=[drop],
        done_when=constraint_exists(ch.on, name),
    )
    return [step]


def _fk_index(ch: c.AddConstraint, ctx: PlanningContext) -> list[Step]:
    cols = ch.constraint.columns
    for ix in ctx.new_indexes:
        named = tuple(index_element_name(x) for x in ix.columns[: len(cols)])
        if ix.on == ch.on and named == tuple(cols):
            return []
    if ctx.facts is not None and ctx.facts.covering_index(ch.on, cols) is not None:
        return []
    name = index_name(ch.on, cols)
    ctx.notes.append(
        f"{ch.on}: index {name} supports the new foreign key (deletes and updates on the referenced "
        "table would otherwise scan it); autogenerate keeps it while the models declare no index on "
        f"({', '.join(cols)}); to declare it, keep its name:\n{_model_index_code(name, cols)}"
    )
    ix = c.CreateIndex(on=ch.on, name=name, columns=tuple(quote_ident(x) for x in cols), concurrently=True)
    return index_steps(ix, name, ctx, reason="no index covers the foreign key's columns")


def _model_index_code(name: str, columns: Sequence[str]) -> str:
    """The SQLAlchemy model line that declares index ``name`` on ``columns``."""
    return "sa.Index(" + ", ".join(json.dumps(x) for x in (name, *columns)) + ")"
