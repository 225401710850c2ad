"""Every rule in its Alembic form, through the real ``check`` pipeline.

``tests/check/alembic_forms/HMxxx.py.txt`` holds the cases of rule ``HMxxx``.  A case starts with
a ``# case: <name>`` line at the start of a line; the comment lines right after it are directives,
everything else up to the next case is the body of ``upgrade()`` (or ``downgrade()``)::

    # case: plain create_index on an existing table
    # expect: HM101
    op.create_index("ix_orders_status", "orders", ["status"])

Directives:

* ``# expect: HM101`` (several codes, each optionally followed by a severity, e.g.
  ``HM101 error HM401``): each code is reported on a line of the body that holds an ``op.*`` call
  (on the line marked ``# <-`` when one is); ``# expect: none``: the file's rule is not reported
  anywhere in the revision;
* ``# absent: HM401 HM406``: these codes are not reported anywhere in the revision;
* ``# message: text``: a finding of the file's rule has ``text`` in its message;
* ``# pg: 15`` / ``# pg: 14.2``: ``--pg-version`` (default 16);
* ``# lock-timeout: none``: no ``op.execute("SET lock_timeout = '2s'")`` before the body (by
  default there is one, so HM401 stays out of the other rules' cases);
* ``# downgrade``: the body is ``downgrade()`` and the run uses ``--downgrade``;
* ``# module: <python line>``: a module-level line (imports), repeatable; it counts as a line of
  the case (a finding may be expected there by marking it ``# <-``);
* ``# small: t1, t2`` / ``# hot: t`` / ``# severity: HM101 warning``: ``[tool.helios-migrate]``
  configuration of the project.

Each case becomes one revision file; cases with the same settings share one Alembic project (the
revisions chained), and each project is checked once, in process, with ``run_check`` as
``helios-migrate check`` runs it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helios_migrate.check.runner import CheckOptions, run_check
from helios_migrate.findings import Finding, Severity
from helios_migrate.rules import registered_rules

RULES = registered_rules()

FORMS = Path(__file__).parent / "alembic_forms"
PREAMBLE = "op.execute(\"SET lock_timeout = '2s'\")"
_CASE = re.compile(r"^# case:\s*(?P<name>.+)$")
_DIRECTIVE = re.compile(r"^#\s*(?P<key>[a-z-]+)\s*(?::\s*(?P<value>.*))?$")
_KEYS = {"expect", "absent", "message", "pg", "lock-timeout", "downgrade", "module", "small", "hot", "severity"}
_OP_CALL = re.compile(r"\bop\.(?!get_context\b)\w+\s*\(")
_MARK = "# <-"
_TOOL_PROBLEMS = ("HM901", "HM903", "HM904")


@dataclass
class FormCase:
    code: str
    name: str
    body: list[str]
    number: int
    expect: list[tuple[str, Severity | None]] = field(default_factory=list)
    expect_none: bool = False
    absent: list[str] = field(default_factory=list)
    message: str | None = None
    pg: str = "16"
    lock_timeout: bool = True
    downgrade: bool = False
    module: list[str] = field(default_factory=list)
    small: tuple[str, ...] = ()
    hot: tuple[str, ...] = ()
    severity: tuple[tuple[str, str], ...] = ()
    # set when the revision file is written
    path: str = ""
    body_lines: dict[int, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.code}:{self.name}"

    @property
    def revision(self) -> str:
        return f"{self.code.lower()}_{self.number:02d}"

    @property
    def group(self) -> tuple[object, ...]:
        return (self.pg, self.downgrade, self.small, self.hot, self.severity)


def _parse_expect(case: FormCase, value: str) -> None:
    tokens = value.split()
    if tokens == ["none"]:
        case.expect_none = True
        return
    for token in tokens:
        if token.upper().startswith("HM"):
            case.expect.append((token.upper(), None))
        else:
            code, _ = case.expect[-1]
            case.expect[-1] = (code, Severity.parse(token))


def _directive(case: FormCase, key: str, value: str) -> None:
    if key == "expect":
        _parse_expect(case, value)
    elif key == "absent":
        case.absent += [t.upper() for t in value.replace(",", " ").split()]
    elif key == "message":
        case.message = value
    elif key == "pg":
        case.pg = value
    elif key == "lock-timeout":
        case.lock_timeout = value != "none"
    elif key == "downgrade":
        case.downgrade = True
    elif key == "module":
        case.module.append(value)
    elif key in ("small", "hot"):
        setattr(case, key, tuple(v.strip() for v in value.split(",") if v.strip()))
    elif key == "severity":
        rule, sev = value.split()
        case.severity = (*case.severity, (rule.upper(), sev))


def load_cases() -> list[FormCase]:
    cases: list[FormCase] = []
    for path in sorted(FORMS.glob("HM*.py.txt")):
        code = path.name.split(".", 1)[0]
        current: FormCase | None = None
        in_directives = False
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _CASE.match(line)
            if m is not None:
                current = FormCase(code, m.group("name").strip(), [], sum(c.code == code for c in cases) + 1)
                cases.append(current)
                in_directives = True
                continue
            if current is None:
                continue  # file header comments
            d = _DIRECTIVE.match(line.strip()) if in_directives else None
            if d is not None and d.group("key") in _KEYS:
                _directive(current, d.group("key"), (d.group("value") or "").strip())
                continue
            in_directives = False
            current.body.append(line)
    return cases


CASES = load_cases()


# -- the project -----------------------------------------------------------------------------------


def _revision_source(case: FormCase, down: str | None) -> tuple[str, dict[int, str]]:
    """The revision file of ``case`` and its body lines by line number."""
    body = list(case.body)
    while body and not body[-1].strip():
        body.pop()
    body_lines: dict[int, str] = {}
    lines = [
        f'"""{case.id}"""',
        "from alembic import op",
        "import sqlalchemy as sa",
        "from sqlalchemy.dialects import postgresql",
    ]
    for text in case.module:
        lines.append(text)
        body_lines[len(lines)] = text
    lines += [
        "",
        f"revision = {case.revision!r}",
        f"down_revision = {down!r}",
        "branch_labels = None",
        "depends_on = None",
        "",
        "",
    ]

    def function(name: str, with_body: bool) -> None:
        lines.append(f"def {name}() -> None:")
        if with_body and case.lock_timeout:
            lines.append("    " + PREAMBLE)
        if with_body:
            for text in body:
                lines.append(("    " + text) if text.strip() else "")
                body_lines[len(lines)] = text
        lines.append("    pass")
        lines.extend(["", ""])

    function("upgrade", not case.downgrade)
    function("downgrade", case.downgrade)
    return "\n".join(lines).rstrip() + "\n", body_lines


def _pyproject(case: FormCase) -> str:
    out = ["[tool.helios-migrate]"]
    if case.severity:
        out += ["[tool.helios-migrate.rules]", "severity = { " + ", ".join(f'{c} = "{s}"' for c, s in case.severity) + " }"]
    if case.small or case.hot:
        out.append("[tool.helios-migrate.tables]")
        if case.small:
            out.append("small = [" + ", ".join(f'"{t}"' for t in case.small) + "]")
        if case.hot:
            out.append("hot = [" + ", ".join(f'"{t}"' for t in case.hot) + "]")
    return "\n".join(out) + "\n"


def _write_project(root: Path, cases: list[FormCase]) -> None:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n", encoding="utf-8")
    (root / "pyproject.toml").write_text(_pyproject(cases[0]), encoding="utf-8")
    down: str | None = None
    for index, case in enumerate(cases):
        name = f"{index:03d}_{case.revision}.py"
        source, case.body_lines = _revision_source(case, down)
        (versions / name).write_text(source, encoding="utf-8")
        case.path = f"migrations/versions/{name}"
        down = case.revision


@pytest.fixture(scope="module")
def findings_by_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Finding]]:
    groups: dict[tuple[object, ...], list[FormCase]] = defaultdict(list)
    for case in CASES:
        groups[case.group].append(case)
    out: dict[str, list[Finding]] = {}
    for number, (group, cases) in enumerate(groups.items()):
        root = tmp_path_factory.mktemp(f"alembic_forms_{number}")
        _write_project(root, cases)
        pg, downgrade = str(group[0]), bool(group[1])
        report = run_check(CheckOptions(paths=(str(root),), pg_version=pg, downgrade=downgrade, cwd=root))
        assert report.revisions == len(cases)
        for case in cases:
            out[case.id] = [f for f in report.findings if f.location.path == case.path]
    return out


# -- the tests -------------------------------------------------------------------------------------


def _shown(case: FormCase, findings: list[Finding]) -> str:
    rows = [f"  line {f.location.line}: {f.code} {f.severity} {f.message}" for f in findings] or ["  (no findings)"]
    body = [f"  {n:3d}| {text}" for n, text in case.body_lines.items()]
    return "findings:\n" + "\n".join(rows) + "\nbody:\n" + "\n".join(body)


def _op_lines(case: FormCase) -> set[int]:
    marked = {n for n, text in case.body_lines.items() if text.rstrip().endswith(_MARK)}
    if marked:
        return marked
    return {n for n, text in case.body_lines.items() if _OP_CALL.search(text)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alembic_form(case: FormCase, findings_by_case: dict[str, list[Finding]]) -> None:
    findings = findings_by_case[case.id]
    shown = _shown(case, findings)
    assert case.expect or case.expect_none or case.absent, f"{case.id}: no expect or absent line"
    if case.expect_none:
        assert case.code not in {f.code for f in findings}, f"unexpected {case.code}\n{shown}"
    for code in case.absent:
        assert code not in {f.code for f in findings}, f"unexpected {code}\n{shown}"
    # A revision that did not render or parse would make every negative case pass: only cases
    # that expect it may have one.
    expected = {code for code, _ in case.expect}
    broken = [f for f in findings if f.code in _TOOL_PROBLEMS and f.code not in expected]
    assert not broken, f"the case's revision was not checked as written\n{shown}"
    lines = _op_lines(case)
    for code, severity in case.expect:
        matching = [f for f in findings if f.code == code]
        assert matching, f"expected {code}\n{shown}"
        placed = [f for f in matching if f.location.line in lines]
        assert placed, f"{code} is not reported on the op.* line(s) {sorted(lines)} of the case\n{shown}"
        if severity is not None:
            assert severity in {f.severity for f in placed}, f"expected {code} {severity}\n{shown}"
    if case.message is not None:
        own = [f for f in findings if f.code == case.code]
        assert any(case.message in f.message for f in own), f"message {case.message!r} not found\n{shown}"


HISTORY_RULES = {"HM312": "test_check_history.py", "HM313": "test_check_history.py"}
"""Rules about a project's history rather than a revision's body: their cases need projects of
their own, in the named test module."""


def test_every_rule_has_a_positive_and_a_negative_alembic_case() -> None:
    missing = []
    for rule in RULES:
        if rule.review is not None:
            continue  # a review rule (6xx) judges schemas, never a revision: tests/review
        if rule.code in HISTORY_RULES:
            text = (Path(__file__).parent / HISTORY_RULES[rule.code]).read_text(encoding="utf-8")
            if rule.code not in text:
                missing.append(f"{rule.code} {rule.name}: not tested in {HISTORY_RULES[rule.code]}")
            continue
        cases = [c for c in CASES if c.code == rule.code]
        if not any(rule.code in {code for code, _ in c.expect} for c in cases):
            missing.append(f"{rule.code} {rule.name}: no positive case")
        if not any(c.expect_none for c in cases):
            missing.append(f"{rule.code} {rule.name}: no negative case")
    assert not missing, "\n".join(missing)


def test_fixture_files_name_registered_rules() -> None:
    codes = {rule.code for rule in RULES}
    unknown = sorted(p.name for p in FORMS.glob("*") if p.name.split(".", 1)[0] not in codes)
    assert not unknown, f"fixture files for unknown rule codes: {unknown}"
