"""``helios-migrate design``: SQLAlchemy 2 models for a described schema, proven on PostgreSQL.

The model answers a schema *description*, a closed JSON document (:mod:`.design_doc`), never code.
helios-migrate checks it (schema, references, names, every expression re-parsed by pglast against
an allow-list), renders the models module and builds the same ``MetaData`` in-process
(:mod:`.design_render`), compiles the DDL with SQLAlchemy, judges it with the safety rules
(schema design rules included), and runs it on a scratch PostgreSQL: an embedded server in a
temporary directory, as a role that is not a superuser, or a transaction rolled back on
``--database-url`` (a superuser connection there is refused unless explicitly allowed).  Any
failure goes back to the model with the reasons (bounded retries).  Nothing the model returns is
executed, imported or evaluated.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from .. import pgserver
from ..config import Config
from ..findings import Location, Severity
from ..lint import LintInput, SourceStatement, lint
from ..sql_parse import SqlSyntaxError, parse_statements
from ..versions import PgVersion
from .ask import Attempt, ask_validated
from .client import LlmClient
from .design_doc import DESIGN_SCHEMA, Design, parse_design
from .design_render import build_metadata, compile_ddl, render_models
from .prompts import data_block, system_prompt

Executor = Callable[[list[str]], list[str]]
"""Runs DDL on a scratch database; returns the problems (empty when it all ran)."""

DESIGN_ROLE = "helios_design"


class SuperuserRefused(RuntimeError):
    """The ``--database-url`` connection is a superuser's and that was not explicitly allowed."""


@dataclass(frozen=True)
class DesignResult:
    models_py: str | None
    ddl: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    """Safety findings below the rejection threshold (info), for the user to read."""
    reasons: tuple[str, ...] = ()
    attempts: int = 0
    history: tuple[Attempt, ...] = field(default=(), repr=False)
    design: Design | None = field(default=None, repr=False)


_TASK = """Design a PostgreSQL schema and answer it as a schema description: one JSON document
(not code, not SQL statements) that helios-migrate turns into SQLAlchemy 2 models and DDL itself.
- "enums": enum types (name, labels); "tables": each with its columns, primary_key (column names),
  foreign_keys, unique constraints, checks and indexes; "notes": what a reviewer should know.
- A column type is {"name": one of the listed names, "length" (varchar only), "precision"/"scale"
  (numeric only), "enum" (the enum type's name, for "enum" columns only), "array"}; unused
  parameters are null.
- "default" is null, {"function": "now()" | "current_timestamp" | "current_date" |
  "gen_random_uuid()", "value": null} or {"function": null, "value": a literal of the column's type}.
- "identity" ("always" / "by_default") only on bigint, integer or smallint NOT NULL columns.
- CHECK expressions, index expressions and partial-index "where" predicates are single SQL
  expressions over the table's own columns: constants, operators, IS [NOT] NULL, IN lists, CASE,
  casts, and immutable functions such as lower, upper, length, btrim, abs, coalesce, nullif.
  No subqueries, no other functions.
- Index elements are {"column": name, "expression": null} or {"column": null, "expression": "..."};
  methods btree, gin, gist, hash, brin.
Follow PostgreSQL good practice: bigint identity primary keys, text rather than varchar(n) unless a
limit is a real rule, timestamptz for timestamps, jsonb rather than json, an index on each foreign
key's columns, NOT NULL where a value is required."""


def design_schema(
    description: str,
    client: LlmClient,
    *,
    executor: Executor,
    version: PgVersion,
    config: Config | None = None,
    existing: dict[str, Any] | None = None,
) -> DesignResult:
    """Ask for a schema description, check and render it, and prove its DDL with ``executor``.

    ``existing`` is a description (as :func:`.design_from_models.describe_metadata` builds it) to
    refine: it is sent as data, and the answer is the whole refined description.
    """
    cfg = config or Config()
    parts = [data_block("schema description", description)]
    if existing is not None:
        parts.insert(0, data_block(
            "current schema description (JSON) to refine; answer the whole refined description",
            json.dumps(existing, indent=1, ensure_ascii=False),
        ))
    parts.append(f"Target PostgreSQL version: {version}.")
    infos: dict[str, tuple[str, ...]] = {}

    def check(obj: dict[str, Any]) -> tuple[DesignResult | None, list[str]]:
        design, problems = parse_design(obj)
        if design is None:
            return None, problems
        try:
            models_py = render_models(design)
            ddl = compile_ddl(build_metadata(design))
        except Exception as exc:  # SQLAlchemy refusing a combination the checks let through
            return None, [f"the description cannot be rendered: {type(exc).__name__}: {exc}"]
        script = ";\n".join(ddl) + ";\n"
        try:
            parse_statements(script, "design.sql")
        except SqlSyntaxError as exc:  # pragma: no cover - SQLAlchemy's DDL parses
            return None, [f"generated DDL does not parse: {exc}"]
        # No suppression comments: the text holds the description's strings, not the user's SQL.
        findings = lint(LintInput("design.sql", (SourceStatement(script, Location("design.sql", 1, 1)),)),
                        config=cfg, version=version)
        blocking = [f for f in findings if f.severity >= Severity.WARNING]
        if blocking:
            return None, [
                f"schema rule {f.code} ({f.rule}, {f.severity}): {f.message}"
                + (f" -- {f.help.splitlines()[0]}" if f.help else "")
                for f in blocking
            ]
        problems = executor(ddl)
        if problems:
            return None, problems
        infos["findings"] = tuple(f"{f.code} {f.rule} ({f.severity}): {f.message}" for f in findings)
        tables = tuple(sorted(t.name for t in design.tables))
        return DesignResult(models_py, tuple(ddl), tables, design.notes, design=design), []

    outcome = ask_validated(
        client,
        system=system_prompt(_TASK, DESIGN_SCHEMA),
        user="\n\n".join(parts),
        schema=DESIGN_SCHEMA,
        schema_name="schema_design",
        purpose="design",
        check=check,
    )
    if outcome.value is None:
        return DesignResult(None, reasons=outcome.reasons, attempts=outcome.attempts, history=outcome.history)
    v = outcome.value
    return DesignResult(v.models_py, v.ddl, v.tables, v.notes, infos.get("findings", ()), (), outcome.attempts,
                        outcome.history, v.design)


def database_executor(url: str, *, commit: bool = False) -> Executor:
    """Run the DDL in one transaction on ``url``; roll it back unless ``commit``."""
    def run(ddl: list[str]) -> list[str]:
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                ok = False
                try:
                    for statement in ddl:
                        try:
                            conn.execute(statement)
                        except psycopg.Error as exc:
                            first = " ".join(statement.split())[:120]
                            return [f"PostgreSQL refused `{first}`: {str(exc).strip().splitlines()[0]}"]
                    ok = True
                finally:
                    if ok and commit:
                        conn.commit()
                    else:
                        conn.rollback()
        except psycopg.Error as exc:
            raise RuntimeError(f"cannot use the scratch database: {exc}") from exc
        return []

    return run


def is_superuser(url: str) -> bool:
    """Whether the role ``url`` connects as is a PostgreSQL superuser."""
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def restricted_database(server_url: str, *, role: str = DESIGN_ROLE, dbname: str = DESIGN_ROLE) -> str:
    """Create a login role that is not a superuser, and a database it owns, on a server we started;
    return a connection string that connects to that database as that role.

    DDL proven there cannot use superuser powers (``COPY ... PROGRAM``, file access, untrusted
    languages), whatever it contains.
    """
    password = secrets.token_urlsafe(24)
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD {}"
        ).format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    return make_conninfo(pgserver.database_url(server_url, dbname), user=role, password=password)


@contextlib.contextmanager
def scratch_database(
    database_url: str | None, *, allow_superuser: bool = False
) -> Iterator[tuple[Executor, PgVersion, str]]:
    """An executor on ``database_url`` (rolled back) or on an embedded PostgreSQL in a temporary
    directory (as a role that is not a superuser).

    Raises :class:`SuperuserRefused` when ``database_url`` connects as a superuser and
    ``allow_superuser`` is false.
    """
    if database_url:
        version = pgserver.server_version(database_url)
        if not allow_superuser and is_superuser(database_url):
            raise SuperuserRefused(
                "the --database-url connection is a PostgreSQL superuser. design runs DDL written from "
                "an LLM's answer there (in a transaction that is rolled back); connect as a role that is "
                "not a superuser, for example one that owns a scratch database, or pass "
                "--allow-superuser to accept the risk"
            )
        yield database_executor(database_url), version, "the --database-url database (rolled back)"
        return
    with tempfile.TemporaryDirectory(prefix="helios-design-") as tmp:
        server = pgserver.start_embedded(Path(tmp), throwaway=True)
        try:
            url = restricted_database(server.url)
            where = f"an embedded PostgreSQL {server.version}, as role {DESIGN_ROLE} (not a superuser)"
            yield database_executor(url), server.version, where
        finally:
            server.stop()
