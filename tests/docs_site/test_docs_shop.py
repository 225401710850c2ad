"""``helios-migrate docs`` on ``examples/shop`` (real servers, PostgreSQL 15 and 18): the Markdown
and Mermaid against a committed snapshot, the revisions at head giving the same pages as the
models, the stale check after a model change, and the SVG (or, without Graphviz, the note)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from docs_helpers import (
    EXPECTED_SHOP,
    SHOP,
    UPDATE_VAR,
    check_er_diagram,
    folder,
    mermaid_blocks,
    run_docs,
)

from helios_migrate.pgserver import RunningServer
from helios_migrate.schema_docs.graphviz import DOT_MISSING

NO_DOT_PATH = os.path.dirname(sys.executable)
"""A PATH holding the interpreter's own directory only: no Graphviz there."""


def _shop_copy(tmp_path: Path) -> Path:
    project = tmp_path / "shop"
    shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_shop_docs_match_the_snapshot(pg_server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    done = run_docs(SHOP, "models", "--out", str(out), "--scratch-url", pg_server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    got = {name: text for name, text in folder(out).items() if name != "schema.svg"}
    if os.environ.get(UPDATE_VAR) == "1":
        shutil.rmtree(EXPECTED_SHOP, ignore_errors=True)
        for name, text in got.items():
            (EXPECTED_SHOP / name).parent.mkdir(parents=True, exist_ok=True)
            (EXPECTED_SHOP / name).write_text(text, encoding="utf-8")
    assert got == folder(EXPECTED_SHOP)
    assert sorted(got) == [
        "CHANGELOG-schema.md", "README.md", "schema.dot",
        "tables/public.customers.md", "tables/public.order_items.md",
        "tables/public.orders.md", "tables/public.products.md",
    ]

    # every Mermaid block is a sane erDiagram: relations only between declared entities
    readme_blocks = mermaid_blocks(got["README.md"])
    assert len(readme_blocks) == 1
    entities, relations = check_er_diagram(readme_blocks[0])
    assert entities == {"customers", "orders", "order_items", "products"}
    assert sorted(relations) == [("customers", "orders"), ("orders", "order_items"), ("products", "order_items")]
    for name, text in got.items():
        if name.startswith("tables/"):
            (block,) = mermaid_blocks(text)
            page_entities, _ = check_er_diagram(block)
            assert name.removeprefix("tables/public.").removesuffix(".md") in page_entities
    _, around_orders = check_er_diagram(mermaid_blocks(got["tables/public.orders.md"])[0])
    assert sorted(around_orders) == [("customers", "orders"), ("orders", "order_items")]

    # the revisions at head build the same tables: the same pages, only the source line differs
    head = tmp_path / "head"
    done = run_docs(SHOP, "head", "--out", str(head), "--scratch-url", pg_server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    from_head = folder(head)
    for name, text in got.items():
        if name != "README.md":
            assert from_head[name] == text, name
    assert "from the revisions at `head`" in from_head["README.md"]
    assert "from the models (`models:metadata`)" in got["README.md"]


def test_check_finds_a_stale_page_after_a_model_change(pg_server: RunningServer, tmp_path: Path) -> None:
    project = _shop_copy(tmp_path)
    out = tmp_path / "docs"
    args = ("--out", str(out), "--scratch-url", pg_server.url)
    assert run_docs(project, *args).returncode == 0
    current = run_docs(project, "--check", *args)
    assert current.returncode == 0, current.stdout + current.stderr
    assert "up to date" in current.stdout

    models = project / "models.py"
    source = models.read_text()
    assert "    note: Mapped[str | None] = mapped_column(Text)\n" in source
    models.write_text(source.replace(
        "    note: Mapped[str | None] = mapped_column(Text)\n",
        "    note: Mapped[str | None] = mapped_column(Text, index=True)\n",
    ))
    stale = run_docs(project, "--check", *args)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "stale: tables/public.orders.md" in stale.stdout
    assert "stale: tables/public.customers.md" not in stale.stdout
    assert not (out / "tables" / "public.orders.md").read_text().count("ix_orders_note")

    # a page removed by hand, a page of a table that is gone
    (out / "tables" / "public.products.md").unlink()
    (out / "tables" / "public.coupons.md").write_text("# public.coupons\n")
    stale = run_docs(project, "--check", *args)
    assert stale.returncode == 1
    assert "missing: tables/public.products.md" in stale.stdout
    assert "extra: tables/public.coupons.md" in stale.stdout

    written = run_docs(project, *args)
    assert written.returncode == 0, written.stderr
    assert "tables/public.coupons.md (removed)" in written.stdout
    assert "ix_orders_note" in (out / "tables" / "public.orders.md").read_text()
    again = run_docs(project, "--check", *args)
    assert again.returncode == 0, again.stdout + again.stderr


def test_svg_through_graphviz_or_the_note_how_to_get_it(pg_server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    args = ("--out", str(out), "--scratch-url", pg_server.url)
    # without dot on PATH: a note saying how to get it, no failure, everything else written
    without = run_docs(SHOP, *args, path=NO_DOT_PATH)
    assert without.returncode == 0, without.stdout + without.stderr
    assert f"note: {DOT_MISSING}" in without.stderr
    assert "apt-get install graphviz" in without.stderr
    assert not (out / "schema.svg").exists(), without.stdout + without.stderr
    assert (out / "schema.dot").is_file() and (out / "README.md").is_file()

    if shutil.which("dot") is None:
        # no Graphviz on this machine: docs says how to get it here too, and --check does not
        # count the drawing it cannot make
        with_path = run_docs(SHOP, *args)
        assert "apt-get install graphviz" in with_path.stderr, with_path.stdout + with_path.stderr
        (out / "schema.svg").write_text("<svg/>")
        unchecked = run_docs(SHOP, "--check", *args)
        assert unchecked.returncode == 0, unchecked.stdout + unchecked.stderr
        return
    drawn = run_docs(SHOP, *args)
    assert drawn.returncode == 0, drawn.stderr
    assert "schema.svg" in drawn.stdout and "note:" not in drawn.stderr, drawn.stdout + drawn.stderr
    svg = (out / "schema.svg").read_text()
    assert "<svg" in svg
    for table in ("public.customers", "public.orders", "public.order_items", "public.products"):
        assert table in svg
    assert 'tables/public.orders.md' in svg  # each table links to its page
    current = run_docs(SHOP, "--check", *args)
    assert current.returncode == 0, current.stdout + current.stderr
    (out / "schema.svg").write_text("<svg/>")
    stale = run_docs(SHOP, "--check", *args)
    assert stale.returncode == 1 and "stale: schema.svg" in stale.stdout, stale.stdout + stale.stderr
    # where dot is missing, --check cannot draw it and does not count it; nor with --no-svg
    no_dot = run_docs(SHOP, "--check", *args, path=NO_DOT_PATH)
    assert no_dot.returncode == 0, no_dot.stdout + no_dot.stderr
    quiet = run_docs(SHOP, "--check", "--no-svg", *args)
    assert quiet.returncode == 0 and "note:" not in quiet.stderr, quiet.stdout + quiet.stderr


def test_the_readme_shows_the_shops_real_output() -> None:
    """The excerpt in the project's README is the snapshot's text (which the test above holds
    equal to what docs writes for the shop)."""
    readme = (SHOP.parents[1] / "README.md").read_text()
    section = readme.split("## `helios-migrate docs`", 1)[1].split("(docs/docs-command.md)", 1)[0]
    expected = (EXPECTED_SHOP / "README.md").read_text()
    (diagram,) = mermaid_blocks(section)
    assert diagram in expected
    tables, orders = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)
    assert all(line in expected for line in tables.splitlines())
    orders_page = (EXPECTED_SHOP / "tables" / "public.orders.md").read_text()
    assert all(line == "..." or line in orders_page for line in orders.splitlines())
