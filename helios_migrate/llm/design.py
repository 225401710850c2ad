"""``helios-migrate design``: SQLAlchemy 2 models for a described schema, proven on PostgreSQL.

The model writes the models module only.  Before anything of it runs, the module's syntax tree is
checked against an allow-list (imports from SQLAlchemy and a few standard modules; classes,
assignments and annotations; no functions, lambdas, loops, dunder access or dangerous builtins).
It is then executed to build its ``MetaData``, the DDL is compiled by SQLAlchemy for PostgreSQL
(so the DDL always matches the models), every statement is parsed with pglast and judged by the
safety rules (schema design rules included), and the DDL is executed on a scratch PostgreSQL --
an embedded server in a temporary directory, or a transaction rolled back on ``--database-url``.
Any failure goes back to the model with the reasons (bounded retries).
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..findings import Severity
from ..lint import lint_sql
from ..sql_parse import SqlSyntaxError, parse_statements
from ..versions import PgVersion
from .ask import Attempt, ask_validated
from .client import LlmClient
from .prompts import data_block, system_prompt
from .schema import DESIGN_SCHEMA

_ALLOWED_MODULES = ("sqlalchemy", "typing", "datetime", "decimal", "uuid", "enum", "__future__")
_FORBIDDEN_NAMES = {
    "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "input", "breakpoint", "exit", "quit", "help", "memoryview", "create_engine",
    "event", "DDL", "__builtins__", "importlib", "os", "sys", "subprocess",
}
_ALLOWED_DUNDERS = {"__tablename__", "__table_args__", "__abstract__", "__future__"}
_FORBIDDEN_NODES: tuple[type[ast.AST], ...] = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.For, ast.AsyncFor, ast.While, ast.With,
    ast.AsyncWith, ast.Try, ast.Global, ast.Nonlocal, ast.Delete, ast.Await, ast.Yield, ast.YieldFrom,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr,
)
_counter = itertools.count(1)

Executor = Callable[[list[str]], list[str]]
"""Runs DDL on a scratch database; returns the problems (empty when it all ran)."""


def static_problems(source: str) -> list[str]:
    """Why ``source`` may not be executed (empty when it may)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"models_py is not valid Python: line {exc.lineno}: {exc.msg}"]
    problems: list[str] = []
    for node in ast.walk(tree):
        where = f"models_py line {getattr(node, 'lineno', '?')}"
        if isinstance(node, _FORBIDDEN_NODES):
            problems.append(f"{where}: {type(node).__name__} is not allowed (declarative models only: "
                            "classes with mapped columns, no functions, lambdas or loops)")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] not in _ALLOWED_MODULES:
                    problems.append(f"{where}: import of {module!r} is not allowed")
            for alias in node.names:
                if alias.name in _FORBIDDEN_NAMES or (alias.asname or "") in _FORBIDDEN_NAMES:
                    problems.append(f"{where}: {alias.name!r} is not allowed")
        elif isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            problems.append(f"{where}: {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and (
            node.attr in _FORBIDDEN_NAMES
            or (node.attr.startswith("_") and node.attr not in _ALLOWED_DUNDERS)
        ):
            problems.append(f"{where}: attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in _ALLOWED_DUNDERS:
            problems.append(f"{where}: name {node.id!r} is not allowed")
    return problems


def metadata_ddl(source: str) -> tuple[list[str], list[str], list[str]]:
    """Execute checked ``source``; return ``(ddl statements, table names, problems)``."""
    from sqlalchemy import MetaData, create_mock_engine

    problems = static_problems(source)
    if problems:
        return [], [], problems
    name = f"helios_design_models_{next(_counter)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, "models.py", "exec"), module.__dict__)
    except Exception as exc:
        return [], [], [f"models_py fails when loaded: {type(exc).__name__}: {exc}"]
    finally:
        sys.modules.pop(name, None)
    metadatas = {
        id(md): md
        for value in vars(module).values()
        for md in [getattr(value, "metadata", None)]
        if isinstance(value, type) and isinstance(md, MetaData)
    }
    metadatas.update({id(v): v for v in vars(module).values() if isinstance(v, MetaData)})
    with_tables = [md for md in metadatas.values() if md.tables]
    if len(with_tables) != 1:
        return [], [], [f"models_py must define tables on exactly one MetaData (found {len(with_tables)})"]
    metadata = with_tables[0]
    ddl: list[str] = []

    def capture(sql: Any, *multiparams: Any, **params: Any) -> None:
        ddl.append(str(sql.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine("postgresql+psycopg://", capture)
    try:
        metadata.create_all(engine, checkfirst=False)
    except Exception as exc:
        return [], [], [f"the models do not compile to PostgreSQL DDL: {type(exc).__name__}: {exc}"]
    return ddl, sorted(metadata.tables), []


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


_TASK = """Design a PostgreSQL schema as a SQLAlchemy 2.0 declarative models module (Python).
Write one module: imports from sqlalchemy (and typing, datetime, decimal, uuid, enum) only; one
`class Base(DeclarativeBase)`; one class per table using `Mapped[...]` and `mapped_column(...)`.
No functions, methods, lambdas, loops or event hooks. Follow PostgreSQL good practice: bigint
identity primary keys (`mapped_column(BigInteger, Identity(), primary_key=True)`), `text` rather than
varchar(n) unless a limit is a real rule, `DateTime(timezone=True)` for timestamps, JSONB rather than
JSON, explicit names for foreign keys' indexes where useful, NOT NULL where a value is required.
Put anything the reviewer should know in "notes"."""


def design_schema(
    description: str,
    client: LlmClient,
    *,
    executor: Executor,
    version: PgVersion,
    config: Config | None = None,
    existing: str | None = None,
) -> DesignResult:
    cfg = config or Config()
    parts = [data_block("schema description", description)]
    if existing is not None:
        parts.insert(0, data_block("existing models.py to refine (return the whole refined module)", existing))
    parts.append(f"Target PostgreSQL version: {version}.")
    infos: dict[str, tuple[str, ...]] = {}

    def check(obj: dict[str, Any]) -> tuple[DesignResult | None, list[str]]:
        source = obj["models_py"]
        ddl, tables, problems = metadata_ddl(source)
        if problems:
            return None, problems
        script = ";\n".join(ddl) + ";\n"
        try:
            parse_statements(script, "design.sql")
        except SqlSyntaxError as exc:  # pragma: no cover - SQLAlchemy's DDL parses
            return None, [f"generated DDL does not parse: {exc}"]
        findings = lint_sql(script, "design.sql", config=cfg, version=version)
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
        return DesignResult(source, tuple(ddl), tuple(tables), tuple(obj["notes"])), []

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
                        outcome.history)


def database_executor(url: str) -> Executor:
    """Run the DDL in a transaction on ``url`` and roll it back (a scratch database is enough)."""
    import psycopg

    def run(ddl: list[str]) -> list[str]:
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                try:
                    for statement in ddl:
                        try:
                            conn.execute(statement)
                        except psycopg.Error as exc:
                            first = " ".join(statement.split())[:120]
                            return [f"PostgreSQL refused `{first}`: {str(exc).strip().splitlines()[0]}"]
                finally:
                    conn.rollback()
        except psycopg.Error as exc:
            raise RuntimeError(f"cannot use the scratch database: {exc}") from exc
        return []

    return run


@contextlib.contextmanager
def scratch_database(database_url: str | None) -> Iterator[tuple[Executor, PgVersion, str]]:
    """An executor on ``database_url`` or on an embedded PostgreSQL in a temporary directory."""
    from ..pgserver import server_version, start_embedded

    if database_url:
        yield database_executor(database_url), server_version(database_url), "the --database-url database (rolled back)"
        return
    with tempfile.TemporaryDirectory(prefix="helios-design-") as tmp:
        server = start_embedded(Path(tmp), throwaway=True)
        try:
            yield database_executor(server.url), server.version, f"an embedded PostgreSQL {server.version}"
        finally:
            server.stop()
