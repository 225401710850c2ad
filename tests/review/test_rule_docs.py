"""Each review rule's documentation page, checked on a real server.

The page's Example, run on an empty database and reviewed live, is reported by the rule; the SQL
under Use instead is not.  (The registry test in tests/rules requires this file to cover every
``review_rules()`` rule.)
"""

from __future__ import annotations

import contextlib
import re

import psycopg
import pytest

from helios_migrate.config import Config
from helios_migrate.review.engine import review_schema
from helios_migrate.review.live_facts import ColumnSampler, read_enum_types
from helios_migrate.rules import Rule, review_rules
from helios_migrate.schema_catalog import read_schema
from helios_migrate.versions import PgVersion

RULES = review_rules()


def _sql_blocks(text: str) -> str:
    return "\n".join(re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL))


def _codes_after(url: str, sql: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (s.strip() for s in sql.split(";")):
            if not statement:
                continue
            # the invalid-index example: the concurrent build fails on purpose
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                conn.execute(statement)
        schema = read_schema(conn)
        version = PgVersion.parse(schema.server_version_num or 160000)
        result = review_schema(
            schema, Config(), version, enum_types=read_enum_types(conn), sampler=ColumnSampler(conn, schema)
        )
    return {rf.finding.code for rf in result.findings}


def test_every_review_rule_is_a_6xx_rule() -> None:
    assert [r.code for r in RULES] == [f"HM6{i:02}" for i in range(1, 20)]


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_example_is_reported_and_use_instead_is_not(rule: Rule, fresh_db: str) -> None:
    sections = rule.sections()
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA example; CREATE SCHEMA fixed")
    example = f"SET search_path = example;\n{_sql_blocks(sections['Example'])}"
    fixed = f"SET search_path = fixed;\n{_sql_blocks(sections['Use instead'])}"
    assert rule.code in _codes_after(fresh_db, example)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA example CASCADE")
    assert rule.code not in _codes_after(fresh_db, fixed)
