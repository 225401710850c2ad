"""Findings: what a safety rule reports, in the shape every output format renders."""

from __future__ import annotations

import enum
from dataclasses import dataclass

DOCS_BASE_URL = "https://helios-migrate.dev/rules/"


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use info, warning or error)") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, order=True)
class Location:
    """Where a finding points: a file and a 1-based line/column (0 when unknown)."""

    path: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0


@dataclass(frozen=True)
class Finding:
    code: str
    """Stable rule code, ``HM`` + 3 digits (``HM101``)."""
    rule: str
    """Kebab-case rule name (``add-column-volatile-default``)."""
    severity: Severity
    message: str
    """One line, specific to this statement ("rewrites orders: 48 GB, ~310M rows")."""
    location: Location
    help: str = ""
    """What to do instead, in words and SQL."""
    statement: str = ""
    """The SQL statement the finding is about."""
    revision: str | None = None
    """The Alembic revision id, when the statement came from a revision file."""

    @property
    def doc_url(self) -> str:
        return f"{DOCS_BASE_URL}{self.code.lower()}-{self.rule}"
