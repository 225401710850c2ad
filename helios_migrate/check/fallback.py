"""Reading a revision's Python when it cannot be rendered offline.

The module's top-level statements (imports, constants, helpers) are run one by one, skipping any
that fail, so one missing import does not hide the rest.  Then the statements of ``upgrade()``
(or ``downgrade()``) are run one at a time with the same offline operations as the renderer:
``op.*`` calls that can be evaluated produce their real SQL; ``op.execute`` calls whose argument is
a string literal (or ``sa.text`` of one) produce that string when they cannot; everything else is
skipped and counted.  ``with op.get_context().autocommit_block():`` keeps its COMMIT / BEGIN.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from .project import RevisionFile
from .render import EmittedStatement, NeedsDatabase, RevisionRenderer


@dataclass(frozen=True)
class FallbackResult:
    statements: tuple[EmittedStatement, ...]
    skipped_lines: tuple[int, ...]
    """Lines of ``op.*`` calls that could not be turned into SQL."""


def _base_namespace() -> dict[str, Any]:
    import sqlalchemy  # lazy: SQLAlchemy, off the check path
    from alembic import context, op  # lazy: Alembic, off the check path
    from sqlalchemy.dialects import postgresql  # lazy: SQLAlchemy, off the check path

    return {
        "op": op,
        "context": context,
        "sa": sqlalchemy,
        "sqlalchemy": sqlalchemy,
        "postgresql": postgresql,
        "text": sqlalchemy.text,
    }


def module_namespace(rev: RevisionFile) -> dict[str, Any]:
    """Globals for the revision, built from every top-level statement that runs."""
    namespace = _base_namespace()
    namespace["__name__"] = "_helios_revision_source"
    namespace["__file__"] = str(rev.path)
    assert rev.tree is not None
    for node in rev.tree.body:
        if isinstance(node, (ast.If, ast.While, ast.For, ast.Try, ast.With, ast.Expr)):
            continue  # module-level side effects are not needed to read op.* calls
        _run(node, rev, namespace)
    return namespace


def _run(node: ast.stmt, rev: RevisionFile, namespace: dict[str, Any]) -> bool:
    try:
        code = compile(ast.Module(body=[node], type_ignores=[]), str(rev.path), "exec")
        exec(code, namespace)
    except (Exception, SystemExit):
        return False
    return True


def read_from_source(rev: RevisionFile, function: str, renderer: RevisionRenderer) -> FallbackResult:
    """Statements of ``function`` as far as they can be read without running it whole."""
    assert rev.tree is not None
    fn = next(
        (
            n for n in rev.tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function
        ),
        None,
    )
    if fn is None:
        return FallbackResult((), ())
    namespace = module_namespace(rev)
    skipped: list[int] = []

    def body() -> None:
        _walk(fn.body, rev, namespace, renderer, skipped)

    statements = renderer.capture(rev.path, fn.lineno, body)
    return FallbackResult(tuple(statements), tuple(skipped))


def _walk(
    stmts: list[ast.stmt],
    rev: RevisionFile,
    namespace: dict[str, Any],
    renderer: RevisionRenderer,
    skipped: list[int],
) -> None:
    for node in stmts:
        if isinstance(node, (ast.With, ast.AsyncWith)):
            if any(_is_autocommit_block(item.context_expr) for item in node.items):
                renderer.emit_marker("COMMIT")
                _walk(node.body, rev, namespace, renderer, skipped)
                renderer.emit_marker("BEGIN")
                continue
            if not _run(node, rev, namespace):
                _walk(node.body, rev, namespace, renderer, skipped)
            continue
        if isinstance(node, ast.If):
            _walk(node.body, rev, namespace, renderer, skipped)
            _walk(node.orelse, rev, namespace, renderer, skipped)
            continue
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            _walk(node.body, rev, namespace, renderer, skipped)
            continue
        if isinstance(node, ast.Try):
            _walk(node.body, rev, namespace, renderer, skipped)
            _walk(node.finalbody, rev, namespace, renderer, skipped)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _run(node, rev, namespace)
            continue
        if _run_statement(node, rev, namespace):
            continue
        literal = _execute_literal(node)
        if literal is not None:
            renderer.emit_literal(literal, node.lineno, node.col_offset + 1)
            continue
        call = _op_call(node)
        if call is not None and _callee_name(call.func) not in _NO_SQL:
            skipped.append(node.lineno)


def _is_autocommit_block(expr: ast.expr) -> bool:
    """``op.get_context().autocommit_block()`` (or ``context.get_context()...``)."""
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "autocommit_block"
    )


_NO_SQL = frozenset({"get_bind", "get_context", "f", "inline_literal", "run_async"})


def _run_statement(node: ast.stmt, rev: RevisionFile, namespace: dict[str, Any]) -> bool:
    try:
        code = compile(ast.Module(body=[node], type_ignores=[]), str(rev.path), "exec")
        exec(code, namespace)
    except NeedsDatabase:
        return False
    except (Exception, SystemExit):
        return False
    return True


def _op_call(node: ast.stmt) -> ast.Call | None:
    value: ast.expr | None = None
    if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign)):
        value = node.value
    if isinstance(value, ast.Await):
        value = value.value
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id in ("op", "batch_op")
    ):
        return value
    return None


def _execute_literal(node: ast.stmt) -> str | None:
    call = _op_call(node)
    if call is None or not isinstance(call.func, ast.Attribute) or call.func.attr != "execute":
        return None
    if not call.args:
        return None
    arg = call.args[0]
    # sa.text("...") / text("...")
    if isinstance(arg, ast.Call) and arg.args and _callee_name(arg.func) == "text":
        arg = arg.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def mentions_get_bind(rev: RevisionFile) -> bool:
    if rev.tree is None:
        return False
    return any(
        isinstance(n, ast.Attribute) and n.attr == "get_bind" for n in ast.walk(rev.tree)
    )
