"""Write the rule documentation pages: ``python -m safety_rules [docs/rules]``.

One Markdown page per rule, generated from its docstring, and an index table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from helios_migrate.rules import Rule

from . import RULE_MODULES


def write_docs(directory: Path) -> list[Path]:
    """Write ``<code>-<name>.md`` for every rule and ``index.md``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    rows = ["| Code | Name | Default severity | Summary |", "| --- | --- | --- | --- |"]
    for rule in (Rule.from_module(module) for module in RULE_MODULES):
        page = directory / f"{rule.code.lower()}-{rule.name}.md"
        page.write_text(rule.markdown(), encoding="utf-8")
        written.append(page)
        rows.append(f"| [{rule.code}]({page.name}) | {rule.name} | {rule.severity} | {rule.summary} |")
    index = directory / "index.md"
    index.write_text("# Rules\n\nGenerated from the rule docstrings by `python -m safety_rules`.\n\n"
                     + "\n".join(rows) + "\n", encoding="utf-8")
    written.append(index)
    return written


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path("docs/rules")
    for path in write_docs(target):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
