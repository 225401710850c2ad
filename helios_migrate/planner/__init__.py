"""Planning: turn the changes a user asked for into lock-safe, re-runnable, reversible steps.

:func:`plan_changes` takes changes (from Alembic operations or SQL), the server version, live
facts about the tables, and a :class:`PlanPolicy`, and returns a :class:`~helios_migrate.plan.Plan`
whose steps follow these rules:

* a step that takes a lock blocking reads or writes on an existing table runs in a short
  transaction of its own with ``lock_timeout`` and retries (``TransactionMode.OWN``);
* work proportional to the table (validation, index builds, backfills) never happens under such a
  lock: ``NOT VALID`` + ``VALIDATE`` in separate transactions, ``CONCURRENTLY`` in autocommit,
  batched keyset backfills;
* every step can run again after an interrupted upgrade (``IF [NOT] EXISTS``, ``done_when``);
* every constraint and index carries an explicit name (PostgreSQL's own default when the model
  gave none), so the inverse can drop it;
* tables created by the same plan are empty and invisible until commit: they keep plain forms;
* every step has its SQL: a change whose SQL cannot be written raises
  :class:`UnrenderableChange` instead of becoming an empty step.

Each planner is a small function registered for one change class (``@plans`` in
:mod:`.context`); a change no planner handles runs as written, in its own short transaction when it
locks an existing table.  The modules, by concern:

* :mod:`.policy` -- :class:`PlanPolicy`: timeouts, retries, batches, small tables;
* :mod:`.facts` -- :class:`PlannerFacts`, what the planner asks about existing tables;
* :mod:`.sqlgen` -- names, column and constraint SQL, the renderer of changes kept as written;
* :mod:`.context` -- the planning context, the registry, :func:`plan_changes`;
* :mod:`.columns` -- NOT NULL, adding and dropping columns and tables, the backfill step;
* :mod:`.type_changes` -- type changes (in place, expand/contract, the way back), enum values;
* :mod:`.constraints`, :mod:`.indexes` -- constraints and indexes without long locks;
* :mod:`.renames` -- column and table renames;
* :mod:`.proposer` -- plans proposed for what the rules cannot plan (an injected :class:`Proposer`).
"""

from __future__ import annotations

from ..sqltext import duration_text, quote_ident
from . import columns, constraints, indexes, type_changes  # noqa: F401  (they register their planners)
from .context import PlanningContext, PlanRefused, plan_changes, plan_one
from .facts import (
    ColumnDependents,
    ColumnDetails,
    DependentView,
    LiveFacts,
    PlannerFacts,
    StaticFacts,
    UnknownFacts,
    planner_facts,
)
from .policy import PlanPolicy
from .proposer import Proposal, Proposer, llm_proposer, plan_with_proposer, unplannable
from .renames import RENAME_STRATEGIES, plan_column_rename, plan_table_rename
from .sqlgen import (
    NAMEDATALEN,
    UnrenderableChange,
    change_sql,
    column_sql,
    constraint_body,
    constraint_name,
    create_index_sql,
    index_name,
    sql_name,
)

__all__ = [
    "NAMEDATALEN",
    "RENAME_STRATEGIES",
    "ColumnDependents",
    "ColumnDetails",
    "DependentView",
    "LiveFacts",
    "PlanPolicy",
    "PlanRefused",
    "PlannerFacts",
    "PlanningContext",
    "Proposal",
    "Proposer",
    "StaticFacts",
    "UnknownFacts",
    "UnrenderableChange",
    "change_sql",
    "column_sql",
    "constraint_body",
    "constraint_name",
    "create_index_sql",
    "duration_text",
    "index_name",
    "llm_proposer",
    "plan_changes",
    "plan_column_rename",
    "plan_one",
    "plan_table_rename",
    "plan_with_proposer",
    "planner_facts",
    "quote_ident",
    "sql_name",
    "unplannable",
]
