"""Does ``ALTER COLUMN ... TYPE`` rewrite the table?

PostgreSQL skips the rewrite when the old value is already a valid value of the new type: a
binary-coercible cast (``pg_cast.castmethod = 'b'``) with no length check, or a typmod that only
widens (``varchar(50)`` -> ``varchar(100)``, ``numeric(10,2)`` -> ``numeric(12,2)``), or, from
PostgreSQL 12, ``timestamp`` <-> ``timestamptz`` when the session time zone is UTC.  Anything else --
including a ``USING`` expression that is more than a plain cast of the column -- rewrites the table
and rebuilds every index on it, under ACCESS EXCLUSIVE.

With a live catalog the cast is looked up in ``pg_cast``; offline a small table of built-in facts is
used, and any pair it does not know is classified as a rewrite (conservative, and said so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from pglast import ast, parse_sql

from .effects import Certainty
from .normalize import type_name_to_text
from .versions import PgVersion

_TYPE_RE = re.compile(r"^(?P<base>[a-z_][a-z0-9_ .\"]*?)(?:\((?P<mods>[0-9, ]+)\))?(?P<arr>(?:\[\])*)$")

# Base types whose typmod can grow without a rewrite (each has a length-coercion support function).
_WIDENABLE = {"varchar", "varbit", "numeric", "timestamp", "timestamptz", "time", "timetz", "interval"}
_TEMPORAL_DEFAULT_PRECISION = 6

# Built-in binary-coercible pairs (castmethod 'b') that matter for migrations, for offline use.
_BINARY_COERCIBLE = {
    ("varchar", "text"),
    ("text", "varchar"),
    ("char", "varchar"),
    ("cidr", "inet"),
    ("xml", "text"),
    ("xml", "varchar"),
}

_BUILTIN = {
    "smallint", "integer", "bigint", "real", "double precision", "numeric", "boolean", "text",
    "varchar", "char", "date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid",
    "json", "jsonb", "bytea", "inet", "cidr", "macaddr", "money", "xml", "bit", "varbit",
}


class CastLookup(Protocol):
    """What type classification asks a live server (see :class:`helios_migrate.catalog.LiveCatalog`)."""

    def cast_method(self, source: str, target: str) -> str | None:
        """``pg_cast.castmethod`` for the cast, ``"b"`` for binary coercible; ``None`` if no cast."""

    def session_timezone(self) -> str | None:
        """The ``TimeZone`` setting the migration will run with."""


@dataclass(frozen=True)
class TypeChangeVerdict:
    rewrites: bool
    certainty: Certainty
    reason: str


@dataclass(frozen=True)
class _Type:
    base: str
    mods: tuple[int, ...]
    array: bool

    @classmethod
    def parse(cls, text: str) -> _Type:
        m = _TYPE_RE.match(text)
        if not m:
            return cls(text, (), False)
        mods = tuple(int(x) for x in m.group("mods").split(",")) if m.group("mods") else ()
        return cls(m.group("base").strip(), mods, bool(m.group("arr")))

    def render_base(self) -> str:
        return self.base + ("[]" if self.array else "")


def using_is_plain_cast(using: str | None, column: str, new_type: str) -> bool:
    """True when ``USING`` adds nothing to the implicit conversion (``col`` or ``col::newtype``)."""
    if using is None:
        return True
    try:
        stmt = parse_sql(f"SELECT {using}")[0].stmt
    except Exception:
        return False
    if not isinstance(stmt, ast.SelectStmt) or not stmt.targetList:
        return False
    node = stmt.targetList[0].val
    if isinstance(node, ast.TypeCast):
        if node.typeName is None or type_name_to_text(node.typeName) != new_type:
            return False
        node = node.arg
    if not isinstance(node, ast.ColumnRef) or not node.fields or len(node.fields) != 1:
        return False
    field = node.fields[0]
    return isinstance(field, ast.String) and field.sval == column


def _widens(base: str, old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if not new:
        return True  # dropping the limit never needs a check
    if base in {"timestamp", "timestamptz", "time", "timetz"}:
        old_p = old[0] if old else _TEMPORAL_DEFAULT_PRECISION
        return new[0] >= old_p
    if not old:
        return False  # unlimited -> limited needs every value checked
    if base == "numeric":
        old_scale = old[1] if len(old) > 1 else 0
        new_scale = new[1] if len(new) > 1 else 0
        return new_scale == old_scale and new[0] >= old[0]
    return new[0] >= old[0]


def _domain(catalog: CastLookup | None, type_text: str) -> tuple[str, bool] | None:
    """``(base type, has constraints)`` when ``type_text`` is a domain on the live server."""
    lookup = getattr(catalog, "domain_base", None)
    if lookup is None:
        return None
    found: tuple[str, bool] | None = lookup(type_text)
    return found


def classify(
    old_type: str | None,
    new_type: str,
    *,
    column: str,
    using: str | None,
    version: PgVersion,
    catalog: CastLookup | None = None,
) -> TypeChangeVerdict:
    """Decide whether changing ``column`` from ``old_type`` to ``new_type`` rewrites the table."""
    if not using_is_plain_cast(using, column, new_type):
        return TypeChangeVerdict(True, Certainty.KNOWN, "the USING expression computes new values")
    if old_type is None:
        return TypeChangeVerdict(
            True,
            Certainty.CONSERVATIVE,
            "the current column type is unknown offline; assumed to rewrite "
            "(pass --database-url, or existing_type= in Alembic, for an exact answer)",
        )
    if old_type == new_type:
        return TypeChangeVerdict(False, Certainty.KNOWN, "the type does not change")
    # Domains: a value of a domain is a value of its base type (no conversion).  Converting to a
    # domain with constraints rewrites the table (ATColumnChangeRequiresRewrite); to one without,
    # it is decided by the base type.
    new_domain = _domain(catalog, new_type)
    if new_domain is not None:
        base, constrained = new_domain
        if constrained:
            return TypeChangeVerdict(
                True, Certainty.CATALOG,
                f"{old_type} -> {new_type}: the domain has constraints, so every value is checked "
                "and the table rewritten",
            )
        inner = classify(old_type, base, column=column, using=None, version=version, catalog=catalog)
        return TypeChangeVerdict(
            inner.rewrites, Certainty.CATALOG, f"{old_type} -> domain {new_type} over {base}: {inner.reason}"
        )
    old_domain = _domain(catalog, old_type)
    if old_domain is not None:
        inner = classify(old_domain[0], new_type, column=column, using=None, version=version, catalog=catalog)
        return TypeChangeVerdict(
            inner.rewrites, Certainty.CATALOG, f"domain {old_type} over {old_domain[0]}: {inner.reason}"
        )
    old, new = _Type.parse(old_type), _Type.parse(new_type)
    if old.array != new.array:
        return TypeChangeVerdict(True, Certainty.KNOWN, "array dimensionality changes")

    if old.base == new.base:
        if old.base in _WIDENABLE and _widens(old.base, old.mods, new.mods):
            return TypeChangeVerdict(False, Certainty.KNOWN, f"{old_type} -> {new_type} only widens")
        if old.base in _WIDENABLE or old.base in _BUILTIN:
            return TypeChangeVerdict(
                True, Certainty.KNOWN, f"{old_type} -> {new_type} must check or convert every value"
            )
        return TypeChangeVerdict(
            True, Certainty.CONSERVATIVE, f"typmod change on {old.base}: assumed to rewrite"
        )

    pair = (old.base, new.base)
    if pair in {("timestamp", "timestamptz"), ("timestamptz", "timestamp")}:
        tz = catalog.session_timezone() if catalog is not None else None
        if tz is not None and tz.upper() in {"UTC", "ETC/UTC", "UCT", "ZULU", "ETC/UCT", "GMT"} and (
            version.major >= 12
        ):
            return TypeChangeVerdict(
                False, Certainty.CATALOG, f"{old_type} -> {new_type} with TimeZone {tz}: no rewrite"
            )
        if tz is None:
            return TypeChangeVerdict(
                True,
                Certainty.CONSERVATIVE,
                f"{old_type} -> {new_type} rewrites unless the session TimeZone is UTC "
                "(unknown offline)",
            )
        return TypeChangeVerdict(
            True, Certainty.CATALOG, f"{old_type} -> {new_type} rewrites with TimeZone {tz}"
        )

    method: str | None
    certainty = Certainty.KNOWN
    if catalog is not None:
        method = catalog.cast_method(old.render_base(), new.render_base())
        certainty = Certainty.CATALOG
    else:
        method = "b" if pair in _BINARY_COERCIBLE else None
        if method is None and not (old.base in _BUILTIN and new.base in _BUILTIN):
            return TypeChangeVerdict(
                True,
                Certainty.CONSERVATIVE,
                f"{old_type} -> {new_type}: cast unknown offline, assumed to rewrite",
            )
    if method == "b" and (not new.mods or (old.base == "varchar" and _widens("varchar", old.mods, new.mods))):
        return TypeChangeVerdict(False, certainty, f"{old_type} -> {new_type} is binary coercible")
    if method == "b":
        return TypeChangeVerdict(
            True, certainty, f"{old_type} -> {new_type} is binary coercible but {new_type} adds a limit"
        )
    return TypeChangeVerdict(True, certainty, f"{old_type} -> {new_type} converts every value")
