"""A hostile endpoint cannot run code or SQL of its choosing through ``design``.

The endpoint answers through the real ``openai`` SDK from the fake server on 127.0.0.1.  Code, SQL
fragments and shell commands hidden in any field of the answer are either rejected with the reason
or end up as quoted data; each case checks that no marker file appears and that the scratch
database holds exactly the designed tables (or nothing, when the design was refused).
"""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path
from typing import Any

import psycopg
import pytest
from llm.llm_fake_server import FIXTURES, FakeLLMServer

from helios_migrate.llm.design import DesignResult, database_executor, design_schema
from helios_migrate.llm.design_doc import parse_design
from helios_migrate.llm.design_render import compile_ddl, design_ddl, render_models
from helios_migrate.pgserver import RunningServer

from .conftest import MakeClient

GOOD: dict[str, Any] = json.loads((FIXTURES / "design_good.json").read_text())["replies"][0]["json"]
HOSTILE_NAME = 'x"; DROP TABLE t; --'


def registry_payload(marker: Path) -> str:
    return (
        "from sqlalchemy.dialects import registry\n"
        'registry.register("x", "os", "system")\n'
        'run = registry.load("x")\n'
        f'done = run("touch {marker}")\n'
    )


def copy_payload(marker: Path) -> str:
    return f"'); COPY authors TO PROGRAM 'touch {marker}'; --"


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def relations(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
        ).fetchall()
    return {r[0] for r in rows}


def design(client: Any, url: str | None, *, commit: bool = True) -> DesignResult:
    executor = database_executor(url, commit=commit) if url else (lambda ddl: [])
    from helios_migrate.versions import PgVersion

    return design_schema("a blog", client, executor=executor, version=PgVersion(18))


def load_module(source: str, name: str) -> types.ModuleType:
    """Execute a models module that helios-migrate rendered (our code, with the answer's strings
    as data) and return it."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    finally:
        sys.modules.pop(name, None)
    return module


# -- code instead of data ------------------------------------------------------------------------


def test_models_code_in_the_answer_is_an_unknown_key(make_client: MakeClient, restricted_db: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    answer = {**good(), "models_py": registry_payload(marker)}
    result = design(make_client(json.dumps(answer)), restricted_db)
    assert result.models_py is None
    assert "$: unknown key 'models_py'" in result.reasons
    assert not marker.exists()
    assert relations(restricted_db) == set()


def test_code_in_every_string_field_ends_up_as_quoted_data(
    make_client: MakeClient, restricted_db: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    code = registry_payload(marker)
    answer = good()
    authors, posts = answer["tables"]
    authors["comment"] = code
    authors["columns"][1]["comment"] = copy_payload(marker)
    authors["columns"][1]["default"] = {"function": None, "value": copy_payload(marker)}
    posts["columns"][3]["default"] = {"function": None, "value": code}
    posts["name"] = HOSTILE_NAME
    posts["columns"][2]["name"] = '"); import os; os.system("touch x") #'
    posts["checks"][0]["expression"] = f"btrim(\"{posts['columns'][2]['name'].replace(chr(34), chr(34) * 2)}\") <> ''"
    answer["notes"] = [code]
    result = design(make_client(json.dumps(answer)), restricted_db)
    assert result.models_py is not None, result.reasons
    assert not marker.exists()
    assert relations(restricted_db) == {"authors", HOSTILE_NAME}
    with psycopg.connect(restricted_db) as conn:
        stored = dict(conn.execute(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        ).fetchall())
        defaults = dict(conn.execute(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
            "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
            "WHERE d.adrelid = 'authors'::regclass"
        ).fetchall())
        column_comment = conn.execute(
            "SELECT col_description('authors'::regclass, 2)"
        ).fetchone()
        hostile_columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
            ['"x""; DROP TABLE t; --"'],
        )]
    assert stored["authors"] == code
    assert column_comment == (copy_payload(marker),)
    assert defaults["name"] == "'" + copy_payload(marker).replace("'", "''") + "'::text"
    assert '"); import os; os.system("touch x") #' in hostile_columns
    # The rendered module holds the strings as data: executing it (our code) runs nothing.
    module = load_module(result.models_py, "hostile_strings_models")
    assert not marker.exists()
    assert compile_ddl(module.Base.metadata) == list(result.ddl)
    assert module.Base.metadata.tables["authors"].comment == code


# -- expressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("pg_read_file('/etc/passwd') IS NOT NULL", "function pg_read_file() is not allowed"),
        ("(SELECT count(*) FROM pg_authid) > 0", "subqueries are not allowed"),
        ("created_at < now()", "function now() is not immutable and is not allowed"),
        ("email <> '' ); DROP TABLE authors; --", "not a valid SQL expression"),
        ("email <> ''; COPY authors TO PROGRAM 'touch MARKER'", "must be one expression, not several statements"),
        ("xmin::text <> ''", "system column 'xmin' is not allowed"),
        ("lo_import('/etc/passwd') > 0", "function lo_import() is not allowed"),
        ("pg_catalog.lower(email) = email AND public.f(email)", "function public.f() is not allowed"),
    ],
)
def test_check_expressions_outside_the_allow_list_are_rejected(
    make_client: MakeClient, restricted_db: str, tmp_path: Path, expression: str, reason: str
) -> None:
    marker = tmp_path / "MARKER"
    answer = good()
    answer["tables"][0]["checks"][0]["expression"] = expression.replace("MARKER", str(marker))
    result = design(make_client(json.dumps(answer)), restricted_db)
    assert result.models_py is None
    assert any(reason in r and "tables[0].checks[0].expression" in r for r in result.reasons), result.reasons
    assert not marker.exists()
    assert relations(restricted_db) == set()


def test_index_expressions_and_predicates_follow_the_same_rule(make_client: MakeClient) -> None:
    answer = good()
    posts = answer["tables"][1]
    posts["indexes"][0]["elements"] = [{"column": None, "expression": "pg_ls_dir('.')"}]
    posts["indexes"][1]["where"] = "created_at > (SELECT max(created_at) FROM posts)"
    result = design(make_client(json.dumps(answer)), None)
    assert result.models_py is None
    assert any("indexes[0].elements[0]: function pg_ls_dir() is not allowed" in r for r in result.reasons)
    assert any("indexes[1].where: subqueries are not allowed" in r for r in result.reasons)


def test_expressions_are_rendered_from_the_parse_tree_not_the_answer_text() -> None:
    answer = good()
    answer["tables"][0]["checks"][0]["expression"] = "length(email)<=320/* a comment */AND email LIKE '%@%'"
    parsed, problems = parse_design(answer)
    assert parsed is not None, problems
    assert parsed.tables[0].checks[0].expression == "length(email) <= 320 AND email LIKE '%@%'"


# -- names, defaults, comments ---------------------------------------------------------------------


def test_hostile_identifier_is_quoted_in_models_and_ddl(restricted_db: str, pg_server: RunningServer) -> None:
    answer = good()
    answer["tables"][0]["name"] = HOSTILE_NAME
    answer["tables"][1]["foreign_keys"][0]["references_table"] = HOSTILE_NAME
    parsed, problems = parse_design(answer)
    assert parsed is not None, problems
    models = render_models(parsed)
    assert f"__tablename__ = {HOSTILE_NAME!r}" in models
    ddl = design_ddl(parsed)
    assert any(s.startswith('CREATE TABLE "x""; DROP TABLE t; --" (') for s in ddl)
    assert any('REFERENCES "x""; DROP TABLE t; --" (id)' in s for s in ddl)
    assert database_executor(restricted_db, commit=True)(ddl) == []
    assert relations(restricted_db) == {HOSTILE_NAME, "posts"}


def test_names_longer_than_63_bytes_are_rejected() -> None:
    answer = good()
    answer["tables"][0]["name"] = "é" * 32  # 64 bytes
    parsed, problems = parse_design(answer)
    assert parsed is None
    assert any("longer than 63 bytes" in p for p in problems)


# -- answers that are not a description -------------------------------------------------------------


def test_huge_answer_is_refused_unread(make_client: MakeClient, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    answer = good()
    answer["tables"][0]["comment"] = registry_payload(marker) * 20_000
    result = design(make_client(json.dumps(answer)), None)
    assert result.models_py is None
    assert any("accepted; it was not read" in r for r in result.reasons), result.reasons
    assert not marker.exists()


def test_long_strings_inside_an_answer_are_rejected(make_client: MakeClient) -> None:
    answer = good()
    answer["tables"][0]["comment"] = "x" * 50_000
    result = design(make_client(json.dumps(answer)), None)
    assert result.models_py is None
    assert "$.tables[0].comment: longer than 2000 characters" in result.reasons


def test_non_json_answer_is_rejected(make_client: MakeClient, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = design(make_client(registry_payload(marker)), None)
    assert result.models_py is None
    assert any("the answer is not valid JSON" in r for r in result.reasons)
    assert not marker.exists()


def test_rejections_are_sent_back_and_the_retry_is_judged_again(make_client: MakeClient, fake_llm: FakeLLMServer) -> None:
    bad = good()
    bad["tables"][0]["checks"][0]["expression"] = "pg_read_file('/etc/passwd') IS NOT NULL"
    result = design(make_client(json.dumps(bad), json.dumps(good()), retries=1), None)
    assert result.models_py is not None and result.attempts == 2
    assert "pg_read_file() is not allowed" in fake_llm.user_texts(1)[-1]
