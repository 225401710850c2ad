"""Suppression comments: ``helios: ignore[...]`` in SQL files and Alembic revisions.

Forms (``--`` in SQL, ``#`` in Python)::

    CREATE INDEX ix ON countries (code);  -- helios: ignore[HM101]
    -- helios: ignore[HM101, HM401]
    CREATE INDEX ix ON countries (code);
    -- helios: ignore                      (every rule, for the statement below)
    -- helios: ignore-file[HM303]          (anywhere in the file: the whole file)
    -- helios: ignore-file                 (the whole file, every rule)

A line suppression applies to the statement that starts on its line or on the line below it (for
a revision, the ``op.*`` call the statement comes from).  A suppression that suppresses nothing is
itself reported (HM902), so stale ignores do not pile up.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

_PATTERN = re.compile(
    r"helios\s*:\s*(?P<kind>ignore-file|ignore)\b\s*(?:\[(?P<codes>[^\]]*)\])?",
    re.IGNORECASE,
)
_SQL_COMMENT = re.compile(r"--(?P<body>.*)$")


@dataclass(frozen=True)
class Suppression:
    """One ``helios: ignore`` comment."""

    line: int
    """1-based line of the comment."""
    codes: frozenset[str] = frozenset()
    """Codes it names; empty means every rule."""
    file_level: bool = False
    column: int = 1

    def covers(self, code: str) -> bool:
        return not self.codes or code in self.codes

    def applies_to_lines(self, first: int, last: int) -> bool:
        """Does this line suppression apply to a statement spanning ``first``..``last``?"""
        if self.file_level:
            return True
        return first - 1 <= self.line <= max(first, last)

    def describe(self) -> str:
        kind = "ignore-file" if self.file_level else "ignore"
        return f"helios: {kind}[{', '.join(sorted(self.codes))}]" if self.codes else f"helios: {kind}"


def _from_comment(body: str, line: int, column: int) -> Suppression | None:
    m = _PATTERN.search(body)
    if m is None:
        return None
    codes = frozenset(
        c.strip().upper() for c in (m.group("codes") or "").split(",") if c.strip()
    )
    return Suppression(line, codes, m.group("kind").lower() == "ignore-file", column)


def parse_sql_suppressions(text: str) -> tuple[Suppression, ...]:
    """Suppressions in ``--`` comments of SQL text."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        index = _comment_start(line)
        if index is None:
            continue
        supp = _from_comment(line[index + 2:], number, index + 1)
        if supp is not None:
            found.append(supp)
    return tuple(found)


def _comment_start(line: str) -> int | None:
    """Index of the ``--`` that starts a comment on ``line``, skipping string literals."""
    quote: str | None = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif line.startswith("--", i):
            return i
        i += 1
    return None


def parse_python_suppressions(text: str) -> tuple[Suppression, ...]:
    """Suppressions in ``#`` comments of Python source (an Alembic revision)."""
    found = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        # Unfinished source: fall back to a line scan (a '#' inside a string is then misread,
        # which at worst reports an unused suppression).
        for number, line in enumerate(text.splitlines(), start=1):
            index = line.find("#")
            if index >= 0:
                supp = _from_comment(line[index + 1:], number, index + 1)
                if supp is not None:
                    found.append(supp)
        return tuple(found)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            supp = _from_comment(tok.string[1:], tok.start[0], tok.start[1] + 1)
            if supp is not None:
                found.append(supp)
    return tuple(found)


def parse_suppressions(text: str, path: str) -> tuple[Suppression, ...]:
    """Suppressions of a file, by its kind: Python comments for ``.py``, SQL comments otherwise."""
    if path.endswith(".py"):
        return parse_python_suppressions(text)
    return parse_sql_suppressions(text)
