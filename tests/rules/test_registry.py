"""The rule registry: stable codes, documentation pages, and docs that agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helios_migrate.config import Config
from helios_migrate.lint import lint_sql
from helios_migrate.rules import DOC_SECTIONS, Rule, registered_rules, rule_by_code
from helios_migrate.versions import PgVersion
from safety_rules import RULE_MODULES

RULES = tuple(Rule.from_module(module) for module in RULE_MODULES)

SNAPSHOT = Path(__file__).parent / "rules.snapshot"


def test_rule_list_snapshot() -> None:
    """Codes, names, default severities and kinds never change silently.

    A new rule appends a line; changing or removing a line breaks users' configuration and
    suppression comments, so it needs a deliberate snapshot update.
    """
    current = "\n".join(f"{r.code} {r.name} {r.severity} {r.kind.value}" for r in RULES)
    assert current.strip() == SNAPSHOT.read_text(encoding="utf-8").strip()


def test_codes_are_unique_ordered_and_categorised() -> None:
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    assert codes == sorted(codes)
    assert len({r.name for r in RULES}) == len(RULES)
    assert all(re.fullmatch(r"HM[1-69]\d\d", c) for c in codes)
    assert all((r.review is not None) == r.code.startswith("HM6") for r in RULES), "6xx: review rules"


def test_every_module_is_registered_once() -> None:
    package = Path(RULE_MODULES[0].__file__ or "").parent
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    registered = [m.__name__.rsplit(".", 1)[1] for m in RULE_MODULES]
    assert sorted(registered) == sorted(modules)
    assert len(registered) == len(set(registered))


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_docstring_has_the_four_sections(rule: Rule) -> None:
    sections = rule.sections()
    assert list(sections)[: len(DOC_SECTIONS)] == list(DOC_SECTIONS), rule.module
    assert all(sections[name] for name in DOC_SECTIONS)
    assert "```sql" in sections["Example"]
    assert "```sql" in sections["Use instead"], "Use instead needs the SQL form"
    assert "```python" in sections["Use instead"], "Use instead needs the Alembic form"
    assert rule.summary and rule.summary.endswith(".")


def _sql_blocks(text: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)


def _version_of(sql: str) -> PgVersion:
    m = re.search(r"^-- pg: (\S+)$", sql, flags=re.MULTILINE)
    return PgVersion.parse(m.group(1) if m else "16")


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_documentation_examples_agree_with_the_rule(rule: Rule) -> None:
    """The Example triggers the rule; the SQL under Use instead does not."""
    sections = rule.sections()
    if rule.review is not None:
        # A review rule judges a schema: tests/review/test_rule_docs.py builds each page's
        # Example and Use instead on a real server and reviews them.
        review_docs = Path(__file__).resolve().parents[1] / "review" / "test_rule_docs.py"
        assert "review_rules()" in review_docs.read_text(encoding="utf-8")
        return
    if rule.revision_only:
        # Only `check` on a revision file (or a project's history) can report it: its Alembic-form
        # fixture, or its history test, proves it.
        forms = Path(__file__).resolve().parents[1] / "check" / "alembic_forms" / f"{rule.code}.py.txt"
        history = Path(__file__).resolve().parents[1] / "check" / "test_check_history.py"
        if forms.exists():
            assert f"expect: {rule.code}" in forms.read_text(encoding="utf-8")
        else:
            assert f'"{rule.code}"' in history.read_text(encoding="utf-8")
        return
    example = "\n".join(_sql_blocks(sections["Example"]))
    found = lint_sql(example, "example.sql", config=Config(), version=_version_of(example))
    assert rule.code in {f.code for f in found}, [(f.code, f.message) for f in found]
    for block in _sql_blocks(sections["Use instead"]):
        found = lint_sql(block, "fixed.sql", config=Config(), version=_version_of(block))
        assert rule.code not in {f.code for f in found}, [(f.code, f.message) for f in found]


def test_the_installed_rule_packages_start_with_the_built_in_rules() -> None:
    """The ``helios_migrate.rules`` entry point of this distribution is the built-in package."""
    assert registered_rules()[: len(RULES)] == RULES


def test_rule_by_code() -> None:
    assert rule_by_code("HM101").name == "create-index-non-concurrently"
    with pytest.raises(KeyError):
        rule_by_code("HM999")


def test_markdown_page() -> None:
    page = rule_by_code("HM109").markdown()
    assert page.startswith("# HM109 set-not-null-with-scan")
    assert "## Use instead" in page and "Default severity: **error**" in page
    assert rule_by_code("HM109").doc_url.endswith("/hm109-set-not-null-with-scan")


def test_generated_docs_are_current(tmp_path: Path) -> None:
    """docs/rules/ is regenerated with ``python -m safety_rules`` whenever a docstring changes."""
    from safety_rules.__main__ import write_docs

    docs = Path(__file__).resolve().parents[2] / "docs" / "rules"
    for page in write_docs(tmp_path):
        committed = docs / page.name
        assert committed.is_file(), f"missing {committed}: run python -m safety_rules"
        assert committed.read_text(encoding="utf-8") == page.read_text(encoding="utf-8"), (
            f"{committed} is stale: run python -m safety_rules"
        )
