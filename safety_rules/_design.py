"""Helpers the design review rules (HM613 and up) share: words of a name, singular forms, text types."""

from __future__ import annotations

import re

from helios_migrate.review_context import TOOL_TABLES
from helios_migrate.schema_model import Schema, Table

_IRREGULAR_PLURALS = {
    "people": "person", "children": "child", "men": "man", "women": "woman", "mice": "mouse",
    "geese": "goose", "feet": "foot", "teeth": "tooth", "criteria": "criterion", "indices": "index",
    "matrices": "matrix", "vertices": "vertex", "analyses": "analysis", "statuses": "status",
    "addresses": "address", "aliases": "alias", "buses": "bus", "quizzes": "quiz",
}
_UNCOUNTABLE = frozenset({
    "data", "metadata", "media", "staff", "equipment", "information", "info", "news", "series",
    "species", "software", "hardware", "feedback", "inventory", "stock", "audit", "history", "config",
    "settings", "status", "analysis", "access", "address", "progress", "traffic", "music", "money",
    "research", "evidence", "advice", "knowledge", "mail", "email", "sms", "gps", "faq", "rss", "dns",
    # collective names of a store of rows: conventional in either style
    "log", "journal", "ledger", "queue", "outbox", "inbox", "archive", "cache", "registry", "catalog",
    "feed", "version", "schema", "migration",
})


def words(name: str) -> list[str]:
    """``totalAmount_usd`` -> ``["total", "amount", "usd"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def number_of(word: str) -> str | None:
    """``"plural"``, ``"singular"``, or ``None`` when an English word's number cannot be told
    from its spelling (``status``, ``data``, ``series``, a word with digits)."""
    word = word.lower()
    if not word.isalpha() or len(word) < 3 or word in _UNCOUNTABLE:
        return None
    if word in _IRREGULAR_PLURALS:
        return "plural"
    if word in _IRREGULAR_PLURALS.values():
        return "singular"
    if word.endswith(("ss", "us", "is", "ous", "ics")):
        return None
    return "plural" if word.endswith("s") else "singular"


def singular(word: str) -> str:
    """A plural English word's singular (``categories`` -> ``category``); other words unchanged."""
    lower = word.lower()
    if lower in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[lower]
    if number_of(lower) != "plural":
        return lower
    if lower.endswith("ies") and len(lower) > 4:
        return lower[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return lower[:-2]
    return lower[:-1]


def singular_name(table_name: str) -> str:
    """A table name with its last word singular: ``order_items`` -> ``order_item``."""
    parts = words(table_name)
    if not parts:
        return table_name.lower()
    return "_".join([*parts[:-1], singular(parts[-1])])


def is_text_type(type_: str) -> bool:
    """``text``, ``varchar(n)``, ``character varying``, ``citext``: a free-form string column."""
    t = type_.lower()
    return t in ("text", "citext", "varchar", "character varying") or t.startswith(("varchar(", "character varying("))


def user_tables(schema: Schema) -> list[Table]:
    """The schema's tables, without the ones tools own (``alembic_version``)."""
    return [t for t in schema.tables if t.name.name not in TOOL_TABLES]


def fk_columns(table: Table) -> set[str]:
    """Every column of ``table`` that is part of one of its foreign keys."""
    return {col for fk in table.foreign_keys for col in fk.columns}
