"""The output formats of ``helios-migrate review`` (a module of its own: the command line names
them without importing the report machinery)."""

from __future__ import annotations

import enum


class ReviewFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    MARKDOWN = "markdown"
