"""SQL text from names and values: the one identifier quoter, literal quoting, durations.

Every statement helios-migrate writes (plans, revision files, runtime SQL, calibration and
verification queries) spells names and values through these functions, so a table called
``order``, a column called ``user``, ``DisplayName``, ``first name`` or ``co"l`` comes out as
PostgreSQL reads it, and no name or value can end a statement early.

The keyword lists are pglast's (the grammar of libpg_query); they are loaded on first use.
"""

from __future__ import annotations

import functools
import re

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

__all__ = [
    "default_object_name",
    "dollar_quote",
    "duration_ms",
    "duration_text",
    "index_element_name",
    "quote_ident",
    "quote_literal",
    "quote_qualified",
    "sql_comment",
]

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
"""What PostgreSQL reads unquoted as exactly that name: ASCII lower case, digits, underscores
(``$`` and non-ASCII letters are legal too, but PostgreSQL's own ``quote_ident()`` quotes them)."""


@functools.cache
def _keywords_to_quote() -> frozenset[str]:
    # As PostgreSQL's quote_ident() and pg_dump: every keyword but the unreserved ones.  Reserved
    # and type/function-name keywords are refused as table or column names; column-name keywords
    # (``values``, ``between``, ``int``...) are accepted in a column definition but not in every
    # place a column is referenced (``SELECT between FROM t``), so they are quoted too.
    return frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS) | frozenset(COL_NAME_KEYWORDS)


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{what} {text!r} contains a NUL byte, which PostgreSQL cannot store")


def quote_ident(name: str) -> str:
    """An identifier as SQL text: bare when PostgreSQL reads it back unchanged (a plain lower-case
    name that is not a keyword it would reject or misread), double-quoted otherwise.

    ``"orders"`` -> ``orders``; ``"user"`` -> ``"user"``; ``"DisplayName"`` -> ``"DisplayName"``;
    ``'co"l'`` -> ``"co""l"``.  Raises :class:`ValueError` for an empty name or a NUL byte.
    """
    if not name:
        raise ValueError("an empty name cannot be written as an SQL identifier")
    _check_text(name, "name")
    if _PLAIN.fullmatch(name) and name not in _keywords_to_quote():
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(schema: str | None, name: str) -> str:
    """``schema.name`` as SQL text, each part through :func:`quote_ident`; ``name`` alone when
    ``schema`` is ``None`` (found through ``search_path``)."""
    if schema is None:
        return quote_ident(name)
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(text: str) -> str:
    """A string constant as SQL text: ``'it''s'``.

    Text with a backslash is written ``E'...'`` with the backslash doubled, which reads the same
    whatever ``standard_conforming_strings`` is.  Raises :class:`ValueError` for a NUL byte.
    """
    _check_text(text, "text")
    quoted = "'" + text.replace("'", "''") + "'"
    if "\\" in text:
        return "E" + quoted.replace("\\", "\\\\")
    return quoted


def sql_comment(text: str) -> str:
    """``-- text`` on one line: a line break in ``text`` (a name may hold one) cannot end the
    comment and turn the rest into a statement."""
    return "-- " + " ".join(text.splitlines())


def dollar_quote(body: str) -> str:
    """A function body as a dollar-quoted string: ``$$body$$``, or ``$q1$body$q1$`` when the body
    (a quoted name in it, say) holds ``$$``, so nothing in the body can end the string early."""
    _check_text(body, "function body")
    tag, n = "$$", 0
    while tag in body:
        n += 1
        tag = f"$q{n}$"
    return f"{tag}{body}{tag}"


_QUOTED_NAME = re.compile(r'"((?:[^"]|"")+)"')


def index_element_name(element: str) -> str | None:
    """The column an index element names, or ``None`` for an expression.

    An element is SQL text: a column name as :func:`quote_ident` writes it, or an expression,
    optionally followed by options (``COLLATE ...``, an operator class, ``DESC``, ``NULLS ...``):
    ``"DisplayName" DESC`` -> ``DisplayName``; ``lower(email)`` -> ``None``.
    """
    quoted = _QUOTED_NAME.match(element)
    if quoted is not None:
        name, rest = quoted.group(1).replace('""', '"'), element[quoted.end():]
    else:
        plain = re.match(r"[A-Za-z_][A-Za-z0-9_$]*", element)
        if plain is None:
            return None
        name, rest = plain.group(0).lower(), element[plain.end():]
    # After a name come only options, each starting with a word: ``a + b`` is an expression.
    if rest and not re.match(r'\s+[A-Za-z_"]', rest):
        return None
    return name


# --- default names ------------------------------------------------------------------------------

NAMEDATALEN = 63
"""The longest identifier PostgreSQL keeps, in bytes (its ``NAMEDATALEN - 1``)."""


def default_object_name(table: str, columns: list[str] | tuple[str, ...], label: str) -> str:
    """The name PostgreSQL gives an index or constraint created without one (``makeObjectName``):
    ``<table>_<columns>_<label>`` (``<table>_<label>`` without columns), the longer of the table
    and column parts shortened a byte at a time, never splitting a character, until the whole fits
    in :data:`NAMEDATALEN` bytes; the label is always kept.  Labels: ``pkey``, ``key`` (a UNIQUE
    constraint), ``fkey``, ``idx`` (any index, unique or not, created without a name), ``excl``,
    ``check``, ``not_null``.  A name already taken gets a number appended by PostgreSQL; that is not
    predicted here."""
    name1 = table.encode()
    name2 = "_".join(columns).encode() if columns else None
    available = NAMEDATALEN - len(label.encode()) - 1 - (1 if name2 is not None else 0)
    chars1, chars2 = len(name1), len(name2 or b"")
    while chars1 + chars2 > available:
        if chars1 > chars2:
            chars1 -= 1
        else:
            chars2 -= 1
    parts = [name1[:chars1].decode("utf-8", "ignore")]
    if name2 is not None:
        parts.append(name2[:chars2].decode("utf-8", "ignore"))
    return "_".join([*parts, label])


# --- durations ----------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(duration: str | None) -> int:
    """A PostgreSQL duration setting in milliseconds: ``"2s"`` -> ``2000``; no unit means ms."""
    if not duration:
        return 0
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", duration)
    if not m:
        raise ValueError(f"not a duration: {duration!r}")
    return int(float(m.group(1)) * _UNITS_MS[m.group(2) or "ms"])


def duration_text(ms: int) -> str:
    """``2000`` -> ``"2s"``, ``1500`` -> ``"1500ms"``: the form written into revisions."""
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def base_type(type_sql: str) -> str:
    """``type_sql`` without its modifier (``varchar(20)`` -> ``varchar``, ``numeric(10, 2)[]`` ->
    ``numeric[]``): an explicit cast to it never truncates; assignment then applies the modifier."""
    return re.sub(r"\s*\([^()]*\)", "", type_sql).strip()
