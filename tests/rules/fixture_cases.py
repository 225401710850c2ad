"""Rule fixture files: ``tests/rules/fixtures/HMxxx.sql``.

A file holds cases separated by ``-- case: <name>`` lines.  Directive comments right after it:

* ``-- expect: HM101`` (or ``HM101 error``, several codes, or ``none``): ``none`` means the file's
  rule is not reported; otherwise each code (with its severity, if given) is reported;
* ``-- pg: 15`` / ``-- pg: 14.2``: the server version (default 16);
* ``-- small: t1, t2`` / ``-- hot: t``: configured table lists;
* ``-- severity: HM101 warning``: a configured severity;
* ``-- facts: orders=51539607552,310000000``: table size in bytes and row estimate;
* ``-- column: orders.id integer``: a column type a live catalog would report;
* ``-- in-transaction: true``: the runner wraps the SQL in a transaction;
* ``-- message: text`` / ``-- help: text``: a substring of the file rule's message / help;
* ``-- count: 2``: how many findings of the file's rule.

The case's SQL (directive lines included, they are comments) is linted as one ``.sql`` file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

from helios_migrate.changes import ConstraintKind, QualifiedName
from helios_migrate.config import Config, RuleSelection, TableLists
from helios_migrate.findings import Severity
from helios_migrate.rule_context import StaticTableFacts, TableSize
from helios_migrate.versions import PgVersion

FIXTURES = Path(__file__).parent / "fixtures"
_DIRECTIVE = re.compile(r"^--\s*(?P<key>[a-z-]+):\s*(?P<value>.*)$")


@dataclass
class Case:
    file: str
    code: str
    name: str
    sql: str
    expect: list[tuple[str, Severity | None]] = field(default_factory=list)
    expect_none: bool = False
    pg: str = "16"
    small: tuple[str, ...] = ()
    hot: tuple[str, ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)
    facts: dict[str, TableSize] = field(default_factory=dict)
    columns: dict[tuple[str, str], str] = field(default_factory=dict)
    in_transaction: bool = False
    message: str | None = None
    help: str | None = None
    count: int | None = None

    @property
    def id(self) -> str:
        return f"{self.code}:{self.name}"

    def config(self) -> Config:
        return Config(
            rules=RuleSelection(severity=MappingProxyType(dict(self.severity))),
            tables=TableLists(small=self.small, hot=self.hot),
        )

    def version(self) -> PgVersion:
        return PgVersion.parse(self.pg)

    def table_facts(self) -> StaticTableFacts | None:
        return StaticTableFacts(self.facts) if self.facts else None

    def catalog(self) -> FakeCatalog | None:
        return FakeCatalog(self.columns) if self.columns else None


class FakeCatalog:
    """The few catalog answers fixtures need: column types and built-in casts."""

    _CASTS: ClassVar[dict[tuple[str, str], str]] = {("varchar", "text"): "b", ("text", "varchar"): "b", ("integer", "bigint"): "f"}

    def __init__(self, columns: dict[tuple[str, str], str]) -> None:
        self.columns = columns

    def column_type(self, table: QualifiedName, column: str) -> str | None:
        return self.columns.get((table.name, column))

    def cast_method(self, source: str, target: str) -> str | None:
        return self._CASTS.get((source, target))

    def session_timezone(self) -> str | None:
        return "UTC"

    def has_valid_not_null_check(self, table: QualifiedName, column: str) -> bool:
        return False

    def constraint(self, table: QualifiedName, name: str) -> tuple[ConstraintKind, QualifiedName | None] | None:
        return None

    def index_table(self, index: QualifiedName) -> QualifiedName | None:
        return None

    def table_indexes(self, table: QualifiedName) -> tuple[QualifiedName, ...]:
        return ()

    def function_volatility(self, name: str) -> str | None:
        return None

    def default_partition(self, table: QualifiedName) -> QualifiedName | None:
        return None


def _parse_expect(case: Case, value: str) -> None:
    tokens = value.split()
    if tokens == ["none"]:
        case.expect_none = True
        return
    for token in tokens:
        if token.upper().startswith("HM"):
            case.expect.append((token.upper(), None))
        else:
            code, _ = case.expect[-1]
            case.expect[-1] = (code, Severity.parse(token))


def load_cases() -> Iterator[Case]:
    for path in sorted(FIXTURES.glob("HM*.sql")):
        code = path.stem
        blocks = re.split(r"^(?=-- case:)", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
        for block in blocks:
            if not block.strip():
                continue
            lines = block.splitlines()
            case = Case(path.name, code, lines[0].split(":", 1)[1].strip(), block)
            for line in lines[1:]:
                m = _DIRECTIVE.match(line.strip())
                if m is None:
                    continue
                key, value = m.group("key"), m.group("value").strip()
                if key == "expect":
                    _parse_expect(case, value)
                elif key == "pg":
                    case.pg = value
                elif key in ("small", "hot"):
                    setattr(case, key, tuple(v.strip() for v in value.split(",")))
                elif key == "severity":
                    rule, sev = value.split()
                    case.severity[rule] = Severity.parse(sev)
                elif key == "facts":
                    table, numbers = value.split("=")
                    size, rows = (int(n) for n in numbers.split(","))
                    case.facts[table.strip()] = TableSize(size, rows)
                elif key == "column":
                    target, type_ = value.split(None, 1)
                    table, column = target.split(".")
                    case.columns[(table, column)] = type_
                elif key == "in-transaction":
                    case.in_transaction = value == "true"
                elif key == "message":
                    case.message = value
                elif key == "help":
                    case.help = value
                elif key == "count":
                    case.count = int(value)
            yield case
