"""The rule registry: every rule of every installed rule package, found by entry point.

A rule package declares itself in its ``pyproject.toml``::

    [project.entry-points."helios_migrate.rules"]
    acme = "acme_migration_rules"

The value names a module (or a ``module:attribute``) that is either one rule module or a package
listing its rule modules, in order, in ``RULE_MODULES``.  The built-in rules are the ``helios``
entry point (:mod:`safety_rules`); they come first, then the other packages by entry-point name.

A rule module defines ``CODE`` (two to five capital letters and three digits; ``HM`` codes belong
to the built-in rules: 1xx locking, 2xx rewrite/scan, 3xx destructive and compatibility, 4xx
transactions and timeouts, 5xx schema design, 9xx tool problems), ``NAME`` (kebab-case),
``SEVERITY`` (the default), ``KIND`` (how table lists apply, see
:class:`~helios_migrate.rule_context.RuleKind`), ``check(ctx) -> Iterable[Violation]`` and
optionally ``DOC_URL`` (its documentation page; built-in rules link to the project's site) and
``CHANGES``: the :class:`~helios_migrate.changes.Change` classes its ``check`` looks at (the engine
calls it only for changes of those kinds, subclasses included; without ``CHANGES`` it is called for
every change, which a rule judging locks or transactions of any statement needs).  A
review rule (``helios-migrate review``: it judges a whole schema, not a statement) defines
``review(ctx) -> Iterable[SchemaViolation]`` (:mod:`helios_migrate.review_context`) and needs no
``check``.  Its
docstring, with the sections "What it does", "Why is this bad?", "Example" and "Use instead", is
the rule's documentation page.

The core never imports a rule package by name: :func:`registered_rules` loads them on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

from .changes import Change
from .findings import DOCS_BASE_URL, Severity
from .review_context import ReviewContext, ReviewFunction, SchemaViolation
from .rule_context import RuleContext, RuleKind, Violation

__all__ = [
    "BUILTIN_ENTRY_POINT",
    "DOC_SECTIONS",
    "ENTRY_POINT_GROUP",
    "CheckFunction",
    "ReviewContext",
    "Rule",
    "RuleLoadError",
    "SchemaViolation",
    "load_rules",
    "registered_rules",
    "review_rules",
    "rule_by_code",
]

ENTRY_POINT_GROUP = "helios_migrate.rules"
BUILTIN_ENTRY_POINT = "helios"
DOC_SECTIONS: tuple[str, ...] = ("What it does", "Why is this bad?", "Example", "Use instead")
CODE_RE = re.compile(r"^[A-Z]{2,5}\d{3}$")
_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

CheckFunction = Callable[[RuleContext], Iterable[Violation]]


class RuleLoadError(RuntimeError):
    """A registered rule package cannot be loaded, or one of its rules is malformed."""


@dataclass(frozen=True)
class Rule:
    """A registered rule: its identity, default severity, check function and documentation."""

    code: str
    name: str
    severity: Severity
    kind: RuleKind
    check: CheckFunction
    doc: str
    module: str
    revision_only: bool = False
    """Reported for Alembic revision files only; the documentation examples are revisions."""
    page: str | None = None
    """The documentation page's address when the rule names one (``DOC_URL``)."""
    review: ReviewFunction | None = None
    """A review rule's ``review(ctx)``: it judges a whole schema (``helios-migrate review``)."""
    changes: tuple[type[Change], ...] | None = None
    """The change kinds ``check`` looks at (``CHANGES``); ``None``: every change."""

    def looks_at(self, kind: type[Change]) -> bool:
        """Is ``check`` worth calling for a change of class ``kind``?"""
        return self.changes is None or issubclass(kind, self.changes)

    @classmethod
    def from_module(cls, module: ModuleType) -> Rule:
        """The rule a rule module defines; :class:`RuleLoadError` names what is wrong."""
        where = module.__name__
        review = getattr(module, "review", None)
        required = ("CODE", "NAME", "SEVERITY", "KIND") if review is not None else (
            "CODE", "NAME", "SEVERITY", "KIND", "check"
        )
        missing = [a for a in required if not hasattr(module, a)]
        if missing:
            raise RuleLoadError(f"{where}: a rule module needs {', '.join(missing)}")
        code, name = module.CODE, module.NAME
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise RuleLoadError(f"{where}: CODE {code!r} is not letters and three digits (\"ACME101\")")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise RuleLoadError(f"{where}: NAME {name!r} is not kebab-case")
        if not isinstance(module.SEVERITY, Severity):
            raise RuleLoadError(f"{where}: SEVERITY must be a helios_migrate.findings.Severity")
        if not isinstance(module.KIND, RuleKind):
            raise RuleLoadError(f"{where}: KIND must be a helios_migrate.rule_context.RuleKind")
        check = getattr(module, "check", _checks_no_statement)
        if not callable(check):
            raise RuleLoadError(f"{where}: check must be a function check(ctx)")
        if review is not None and not callable(review):
            raise RuleLoadError(f"{where}: review must be a function review(ctx)")
        page = getattr(module, "DOC_URL", None)
        changes = _declared_changes(module, where, check)
        return cls(
            code=code,
            name=name,
            severity=module.SEVERITY,
            kind=module.KIND,
            check=check,
            doc=module.__doc__ or "",
            module=where,
            revision_only=bool(getattr(module, "REVISION_ONLY", False)),
            page=str(page) if page else None,
            review=review,
            changes=changes,
        )

    @property
    def summary(self) -> str:
        """The docstring's first line."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    @property
    def doc_url(self) -> str:
        return self.page or f"{DOCS_BASE_URL}{self.code.lower()}-{self.name}"

    def sections(self) -> dict[str, str]:
        """The docstring's ``## Section`` bodies by heading (the documentation page)."""
        out: dict[str, str] = {}
        current: str | None = None
        lines: list[str] = []
        for line in self.doc.splitlines():
            if line.startswith("## "):
                if current is not None:
                    out[current] = "\n".join(lines).strip()
                current, lines = line[3:].strip(), []
            elif current is not None:
                lines.append(line)
        if current is not None:
            out[current] = "\n".join(lines).strip()
        return out

    def markdown(self) -> str:
        """The rule's documentation page."""
        body = self.doc.strip().split("\n", 1)
        rest = body[1].strip() if len(body) > 1 else ""
        return (
            f"# {self.code} {self.name}\n\n{self.summary}\n\n"
            f"Default severity: **{self.severity}**\n\n{rest}\n"
        )


def _declared_changes(
    module: ModuleType, where: str, check: CheckFunction
) -> tuple[type[Change], ...] | None:
    if check is _checks_no_statement:
        return ()
    declared = getattr(module, "CHANGES", None)
    if declared is None:
        return None
    if not isinstance(declared, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, Change) for kind in declared
    ):
        raise RuleLoadError(
            f"{where}: CHANGES must be a tuple of helios_migrate.changes classes (the change kinds "
            "check looks at)"
        )
    return declared


def _checks_no_statement(ctx: RuleContext) -> Iterable[Violation]:
    """The statement check of a review rule: it reports on schemas, never on one statement."""
    return ()


def review_rules() -> tuple[Rule, ...]:
    """The registered rules that judge a whole schema (``helios-migrate review``)."""
    return tuple(rule for rule in registered_rules() if rule.review is not None)


def _rule_modules(entry: metadata.EntryPoint, target: Any) -> Sequence[ModuleType]:
    if isinstance(target, ModuleType):
        if hasattr(target, "CODE"):
            return (target,)
        listed = getattr(target, "RULE_MODULES", None)
        if listed is None:
            raise RuleLoadError(
                f"entry point {entry.name} = {entry.value!r} ({ENTRY_POINT_GROUP}): "
                "the module is neither a rule (no CODE) nor a rule package (no RULE_MODULES)"
            )
        target = listed
    if isinstance(target, (list, tuple)) and all(isinstance(m, ModuleType) for m in target):
        return tuple(target)
    raise RuleLoadError(
        f"entry point {entry.name} = {entry.value!r} ({ENTRY_POINT_GROUP}): "
        "expected a rule module, a package with RULE_MODULES, or a sequence of rule modules"
    )


def load_rules(entry_points: Iterable[metadata.EntryPoint]) -> tuple[Rule, ...]:
    """The rules of ``entry_points``: the built-in entry point first, then by name.

    Raises :class:`RuleLoadError` when a package does not import, a rule is malformed or two rules
    share a code.
    """
    ordered = sorted(entry_points, key=lambda e: (e.name != BUILTIN_ENTRY_POINT, e.name))
    rules: list[Rule] = []
    owner: dict[str, str] = {}
    for entry in ordered:
        try:
            target = entry.load()
        except Exception as exc:  # a third-party package: any import failure is reported as such
            raise RuleLoadError(
                f"entry point {entry.name} = {entry.value!r} ({ENTRY_POINT_GROUP}) does not load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for module in _rule_modules(entry, target):
            rule = Rule.from_module(module)
            if rule.code in owner:
                raise RuleLoadError(
                    f"rule code {rule.code} is defined twice: {owner[rule.code]} and {rule.module}"
                )
            owner[rule.code] = rule.module
            rules.append(rule)
    return tuple(rules)


@functools.cache
def registered_rules() -> tuple[Rule, ...]:
    """Every rule of every installed rule package (loaded once)."""
    return load_rules(metadata.entry_points(group=ENTRY_POINT_GROUP))


def rule_by_code(code: str) -> Rule:
    """The registered rule with ``code``; ``KeyError`` when there is none."""
    for rule in registered_rules():
        if rule.code == code:
            return rule
    raise KeyError(code)
