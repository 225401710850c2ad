"""The stable codes of the findings the core, the planner and the Alembic plugin name in code.

A rule module owns its code and documentation (``safety_rules``, found through the
``helios_migrate.rules`` entry points); the core never imports it.  Code that must refer to a
particular finding -- a plan step that meets one on purpose (an acknowledgement), a tool problem
the engine reports itself -- names it through :class:`RuleCode` instead of a string literal, so a
typo fails at import time instead of matching nothing.  A test checks each member against the
registered rule of the same code and name.
"""

from __future__ import annotations

import enum

__all__ = ["RuleCode"]


class RuleCode(str, enum.Enum):
    """A finding code (``HM`` + 3 digits), by the kebab-case name of its rule in upper snake case.

    A ``str``: it compares equal to ``"HM101"``, renders as ``HM101`` and serialises as such.
    """

    CREATE_INDEX_NON_CONCURRENTLY = "HM101"
    DROP_INDEX_NON_CONCURRENTLY = "HM102"
    CHANGE_COLUMN_TYPE_REWRITE = "HM204"
    RENAME_COLUMN = "HM301"
    RENAME_TABLE = "HM302"
    DROP_COLUMN = "HM303"
    DROP_TABLE = "HM304"
    DROP_NOT_NULL = "HM305"
    DROP_FOREIGN_KEY_OR_UNIQUE = "HM309"
    MULTIPLE_HEADS = "HM312"
    REVISION_EDITED = "HM313"
    ENUM_VALUE_WITHOUT_POSITION = "HM314"
    LOCK_HELD_ACROSS_STATEMENTS = "HM403"
    FOREIGN_KEY_WITHOUT_INDEX = "HM507"
    SYNTAX_ERROR = "HM901"
    UNUSED_SUPPRESSION = "HM902"
    UNANALYSED_STATEMENT = "HM903"
    REVISION_NOT_RENDERED = "HM904"

    def __str__(self) -> str:
        return self.value

    @property
    def rule_name(self) -> str:
        """The rule's kebab-case name (``create-index-non-concurrently``)."""
        return self.name.lower().replace("_", "-")
