"""Rule packages found through the ``helios_migrate.rules`` entry-point group.

The end-to-end case installs a team's rule package the way pip leaves it (a package and its
``.dist-info`` with ``entry_points.txt`` on ``sys.path``) and runs ``helios-migrate check``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from helios_migrate.rules import ENTRY_POINT_GROUP, RuleLoadError, load_rules

ACME_RULE = '''\
"""Tables are named in the singular.

## What it does
Reports ``CREATE TABLE`` of a name ending in ``s``.

## Why is this bad?
Our house style.

## Example
```sql
CREATE TABLE orders (id bigint);
```

## Use instead
```sql
CREATE TABLE "order" (id bigint);
```
"""

from helios_migrate.changes import CreateTable
from helios_migrate.findings import Severity
from helios_migrate.rule_context import RuleContext, RuleKind, Violation

CODE = "ACME101"
NAME = "singular-table-names"
SEVERITY = Severity.WARNING
KIND = RuleKind.OTHER
DOC_URL = "https://wiki.acme.example/migrations/acme101"


def check(ctx: RuleContext):
    change = ctx.change
    if isinstance(change, CreateTable) and change.table.name.endswith("s"):
        yield Violation(f"table {change.table.name} is plural")
'''


def _write_package(root: Path, package: str, files: dict[str, str]) -> None:
    (root / package).mkdir(parents=True)
    for name, text in files.items():
        (root / package / name).write_text(text, encoding="utf-8")


def _install(root: Path, dist: str, entry_points: str) -> None:
    """What ``pip install`` leaves for a distribution: metadata and its entry points."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    _write_package(root, "acme_rules", {
        "__init__.py": "from . import singular\n\nRULE_MODULES = (singular,)\n",
        "singular.py": ACME_RULE,
    })
    monkeypatch.syspath_prepend(str(root))
    return root


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_a_package_and_a_single_module_both_register(acme: Path) -> None:
    rules = load_rules([_entry("acme", "acme_rules"), _entry("helios", "safety_rules")])
    assert rules[0].code == "HM101", "the built-in rules come first"
    acme_rule = rules[-1]
    assert (acme_rule.code, acme_rule.name, acme_rule.module) == (
        "ACME101", "singular-table-names", "acme_rules.singular"
    )
    assert acme_rule.doc_url == "https://wiki.acme.example/migrations/acme101"
    single = load_rules([_entry("one", "acme_rules.singular")])
    assert [r.code for r in single] == ["ACME101"]


def test_two_rules_with_one_code_are_refused(acme: Path) -> None:
    with pytest.raises(RuleLoadError, match="ACME101 is defined twice"):
        load_rules([_entry("a", "acme_rules"), _entry("b", "acme_rules.singular")])


def test_a_package_that_does_not_import_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match=r"entry point broken = 'no_such_rules_pkg'.*does not load"):
        load_rules([_entry("broken", "no_such_rules_pkg")])


def test_a_malformed_rule_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_package(tmp_path, "bad_rules", {"__init__.py": 'CODE = "acme-1"\nNAME = "x"\n'})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuleLoadError, match="bad_rules: a rule module needs SEVERITY, KIND, check"):
        load_rules([_entry("bad", "bad_rules")])


def test_an_installed_rule_package_runs_in_check(acme: Path, tmp_path: Path) -> None:
    _install(acme, "acme_rules", f"[{ENTRY_POINT_GROUP}]\nacme = acme_rules\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "one.sql").write_text("CREATE TABLE orders (id bigint);\n", encoding="utf-8")
    (project / "pyproject.toml").write_text(
        '[tool.helios-migrate.rules]\nseverity = { ACME101 = "error" }\n', encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(acme), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "check", "one.sql", "--format", "json"],
        cwd=project, capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert '"ACME101"' in done.stdout, done.stdout + done.stderr
    assert "table orders is plural" in done.stdout
    assert done.returncode == 1, "the configured severity (error) makes check fail"

    (project / "pyproject.toml").write_text(
        '[tool.helios-migrate.rules]\nignore = ["ACME"]\n', encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "helios_migrate.cli", "check", "one.sql", "--format", "json"],
        cwd=project, capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert "ACME101" not in done.stdout, "a code prefix of a team's rules selects them"
    assert done.returncode == 0, done.stdout + done.stderr
