"""Output formats of ``helios-migrate check``: each renders a :class:`CheckReport` to text."""

from __future__ import annotations

import enum
from collections.abc import Callable

from ..report import CheckReport
from .github import render_github
from .json_report import render_json
from .markdown import render_markdown
from .sarif import render_sarif
from .text import render_text


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    MARKDOWN = "markdown"


RENDERERS: dict[OutputFormat, Callable[[CheckReport], str]] = {
    OutputFormat.TEXT: render_text,
    OutputFormat.JSON: render_json,
    OutputFormat.SARIF: render_sarif,
    OutputFormat.GITHUB: render_github,
    OutputFormat.MARKDOWN: render_markdown,
}


def render(report: CheckReport, output_format: OutputFormat) -> str:
    return RENDERERS[output_format](report)


__all__ = ["RENDERERS", "OutputFormat", "render"]
