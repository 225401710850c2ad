"""Proof that the lock knowledge base says what real PostgreSQL servers do.

For every form of ``forms.FORMS`` on every test server: run the form's setup on a fresh clone of
the proof schema, ask the knowledge base (with the server's real version and a live catalog) what
the statement will do, run the statement with :func:`helios_migrate.observe.observe_statement`, and
require the prediction to match the observation:

* the strongest lock on each observed relation and on every relation the knowledge base names
  (table, referenced table, index, parent, partition), compared by relation name;
* whether the table was rewritten (new ``relfilenode``), and which of its indexes were rebuilt
  (each index's ``relfilenode`` before and after, against the indexes the knowledge base names);
* whether a concurrent read and a concurrent write were blocked;
* that statements the knowledge base marks "outside a transaction block only" are refused by the
  server inside ``BEGIN`` (and that the forms run outside one are refused only when it says so);
* that forms newer than the server are rejected by its grammar and marked unsupported.

Set ``HELIOS_PROOF_REPORT=/path/file.jsonl`` to append one JSON record per form and server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import pytest

from helios_migrate.catalog import LiveCatalog
from helios_migrate.effects import Effect, RelationRole, TransactionUse
from helios_migrate.knowledge import effect_of
from helios_migrate.locks import LockMode
from helios_migrate.observe import Observation, observe_statement
from helios_migrate.pgserver import RunningServer
from helios_migrate.sql_parse import changes_from_sql
from helios_migrate.versions import PgVersion

from .forms import FORMS, Form

pytestmark = pytest.mark.proof

PROBE_TIMEOUT_S = 0.3
"""``lock_timeout`` of the concurrent read/write probes; a wait is also confirmed with
``pg_blocking_pids``, so this only bounds how long a blocked probe is kept waiting."""
PAUSE_AT_END_S = 0.1
"""Statements run outside a transaction hold their last locks this long at their end, so that a
short final phase (DETACH ... CONCURRENTLY's second transaction) is seen by the sampler."""
SAMPLE_INTERVAL_S = 0.002
ACTIVE_SQL_TRANSACTION = "25001"
SYNTAX_ERROR = "42601"


# --- helpers ----------------------------------------------------------------------------------


def _run_setup(url: str, statements: Sequence[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)


def _predict(url: str, form: Form, version: PgVersion) -> tuple[list[Effect], set[str]]:
    """The knowledge base's effects, and which of the relations it names exist before the run."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in form.settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        catalog = LiveCatalog(conn)
        effects = [effect_of(ch, version, catalog) for ch in changes_from_sql(form.statement)]
        existing: set[str] = set()
        for eff in effects:
            for lock in eff.locks:
                if lock.role is RelationRole.TYPE:
                    continue
                row = conn.execute("SELECT to_regclass(%s)", (str(lock.relation),)).fetchone()
                if row is not None and row[0] is not None:
                    existing.add(lock.relation.name)
    return effects, existing


def _predicted_locks(effects: Sequence[Effect]) -> dict[str, LockMode]:
    out: dict[str, LockMode] = {}
    for eff in effects:
        for lock in eff.locks:
            if lock.role is RelationRole.TYPE:
                continue
            name = lock.relation.name
            if name not in out or lock.mode > out[name]:
                out[name] = lock.mode
    return out


def _mode(mode: LockMode | None) -> str:
    return mode.sql_name if mode is not None else "none"


def _describe_prediction(effects: Sequence[Effect]) -> str:
    parts = []
    for eff in effects:
        locks = (
            ", ".join(
                f"{lk.relation.name} ({lk.role.value})={lk.mode.sql_name}" for lk in eff.locks
            )
            or "none"
        )
        parts.append(
            f"{eff.change.kind}: locks {locks}; work {eff.work.value}; rewrites table "
            f"{eff.rewrites_table}; blocks reads {eff.blocks_reads}; blocks writes "
            f"{eff.blocks_writes}; transaction {eff.transaction.value}; certainty "
            f"{eff.certainty.value}"
            + (f"; unsupported: {eff.unsupported}" if eff.unsupported else "")
        )
    return "\n    ".join(parts) or "no change recognised"


def _report(record: Mapping[str, Any]) -> None:
    path = os.environ.get("HELIOS_PROOF_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")


def _fail(
    form: Form,
    server: RunningServer,
    effects: Sequence[Effect],
    obs: Observation | None,
    problems: Sequence[str],
) -> None:
    lines = [
        f"form {form.id} on {server.name} (PostgreSQL {server.version}): knowledge base disagrees "
        "with the server",
        f"  statement: {form.statement}",
        f"  predicted: {_describe_prediction(effects)}",
    ]
    if obs is not None:
        lines.append(f"  observed:  {obs.summary()}")
        if obs.waited_on:
            lines.append(f"  (waited for its lock on: {sorted(obs.waited_on)})")
    lines += [f"  - {p}" for p in problems]
    pytest.fail("\n".join(lines), pytrace=False)


# --- the proof --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_knowledge_matches_server(form: Form, pg_server: RunningServer, big_table_db: str) -> None:
    version = pg_server.version
    record: dict[str, Any] = {"form": form.id, "server": pg_server.name, "version": str(version)}

    if version.major < form.min_major:
        _prove_rejected(form, pg_server, big_table_db, record)
        return

    _run_setup(big_table_db, form.setup)
    effects, existing = _predict(big_table_db, form, version)
    problems: list[str] = []
    if not effects:
        problems.append("sql_parse recognised no change in the statement")

    # Inside or outside a transaction block.
    outside_only = any(e.transaction is TransactionUse.OUTSIDE_ONLY for e in effects)
    if outside_only or not form.in_transaction:
        inside = observe_statement(
            big_table_db,
            form.statement,
            relations=form.relations,
            in_transaction=True,
            probe_timeout_s=PROBE_TIMEOUT_S,
            settings=form.settings,
        )
        refused = inside.error_sqlstate == ACTIVE_SQL_TRANSACTION
        record["refused_in_transaction"] = refused
        if refused != outside_only:
            problems.append(
                f"transaction use: predicted "
                f"{'refused' if outside_only else 'accepted'} inside BEGIN, server "
                f"{'refused' if refused else 'accepted'} it"
                + (f" ({inside.error})" if inside.error else "")
            )
        if not refused and not form.in_transaction and inside.error is None:
            pytest.fail(
                f"form {form.id}: the server accepted inside BEGIN a statement the form runs "
                "outside a transaction; the database was changed, fix the form",
                pytrace=False,
            )

    obs = observe_statement(
        big_table_db,
        form.statement,
        relations=form.relations,
        in_transaction=form.in_transaction,
        probe_timeout_s=PROBE_TIMEOUT_S,
        settings=form.settings,
        sample_interval_s=SAMPLE_INTERVAL_S,
        pause_at_end_s=0.0 if form.in_transaction else PAUSE_AT_END_S,
    )
    record.update(
        statement=form.statement,
        observed=obs.summary(),
        predicted=_describe_prediction(effects),
        observed_locks={k: v.sql_name for k, v in obs.locks.items()},
        object_locks={k: v.sql_name for k, v in obs.object_locks.items()},
        read_blocked=obs.read_blocked,
        write_blocked=obs.write_blocked,
        table_rewritten=obs.table_rewritten,
        rewritten_indexes=sorted(obs.rewritten_indexes),
        duration_s=obs.duration_s,
        samples=obs.samples,
    )
    if obs.error is not None:
        problems.append(f"the statement failed on the server: {obs.error}")
        record["problems"] = problems
        _report(record)
        _fail(form, pg_server, effects, obs, problems)

    predicted = _predicted_locks(effects)
    names = [r.rpartition(".")[2] for r in form.relations]
    names += sorted(n for n in predicted if n in existing and n not in names)
    for name in names:
        want, got = predicted.get(name), obs.locks.get(name)
        if want != got:
            problems.append(f"lock on {name}: predicted {_mode(want)}, observed {_mode(got)}")

    want_rewrite = any(e.rewrites_table for e in effects)
    if want_rewrite != obs.table_rewritten:
        problems.append(
            f"table rewrite: predicted {want_rewrite}, observed {obs.table_rewritten} "
            f"(new relfilenode on: {sorted(obs.rewritten_relations) or 'nothing'})"
        )
    want_indexes = {i.name for e in effects for i in e.rebuilt_indexes}
    if want_indexes != set(obs.rewritten_indexes):
        problems.append(
            f"indexes rebuilt (new relfilenode): predicted {sorted(want_indexes) or 'none'}, "
            f"observed {sorted(obs.rewritten_indexes) or 'none'}"
        )
    want_reads = any(e.blocks_reads for e in effects)
    if want_reads != obs.read_blocked:
        problems.append(
            f"concurrent read blocked: predicted {want_reads}, observed {obs.read_blocked}"
            + (f" (on {sorted(obs.reads_blocked_on)})" if obs.reads_blocked_on else "")
        )
    want_writes = any(e.blocks_writes for e in effects)
    if want_writes != obs.write_blocked:
        problems.append(
            f"concurrent write blocked: predicted {want_writes}, observed {obs.write_blocked}"
            + (f" (on {sorted(obs.writes_blocked_on)})" if obs.writes_blocked_on else "")
        )
    if obs.probe_errors:
        problems.append(f"probe errors (the probes themselves failed): {list(obs.probe_errors)}")

    record["problems"] = problems
    _report(record)
    if problems:
        _fail(form, pg_server, effects, obs, problems)


def _first_rejected(url: str, statements: tuple[str, ...]) -> str | None:
    """The first statement the server refuses as a syntax error (all rolled back), or None."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            with conn.transaction(force_rollback=True):
                for stmt in statements:
                    try:
                        conn.execute(stmt)
                    except psycopg.Error as exc:
                        return stmt if exc.sqlstate == SYNTAX_ERROR else None
        except psycopg.Error:
            return None
    return None


def _prove_rejected(form: Form, server: RunningServer, url: str, record: dict[str, Any]) -> None:
    """A form newer than the server: its grammar must refuse it and the KB must say unsupported."""
    newer = _first_rejected(url, (*form.setup, form.statement))
    if newer is None:
        pytest.fail(
            f"{form.id}: marked for PostgreSQL {form.min_major}+, but {server.version} accepts "
            "its setup and statement"
        )
    # Either the statement itself is newer syntax, or (VALIDATE of a PG 18 NOT NULL ... NOT VALID)
    # the setup that creates what it acts on is: prove the KB refuses that one.
    effects = [effect_of(ch, server.version) for ch in changes_from_sql(newer)]
    record.update(statement=newer, rejected=True, predicted=_describe_prediction(effects))
    problems = []
    if not any(e.unsupported for e in effects):
        problems.append(
            f"PostgreSQL {server.version} rejects the statement (syntax error) but the knowledge "
            "base does not mark it unsupported"
        )
    record["problems"] = problems
    _report(record)
    if problems:
        _fail(form, server, effects, None, problems)
