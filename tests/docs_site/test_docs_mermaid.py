"""The Mermaid and Graphviz text for shapes the shop does not have: another schema, a
self-reference, a one-to-one key, names that need quoting, an array type (no database: the
schema is built from catalog objects as the diff catalog reads them)."""

from __future__ import annotations

from docs_helpers import check_er_diagram

from helios_migrate.diff.catalog import SchemaObject, SchemaObjects
from helios_migrate.schema_docs.extras import Extras
from helios_migrate.schema_docs.graphviz import dot_source
from helios_migrate.schema_docs.mermaid import attribute_type, er_diagram, neighbours
from helios_migrate.schema_docs.schema import build_schema


def _table(schema: str, name: str) -> SchemaObject:
    return SchemaObject("table", f"{schema}.{name}", (("kind", "ordinary"),), parts=(schema, name))


def _column(schema: str, table: str, name: str, type_: str, nullable: bool = False) -> SchemaObject:
    return SchemaObject(
        "column", f"{schema}.{table}.{name}",
        (("type", type_), ("nullable", nullable), ("default", None), ("identity", None)),
        f"{schema}.{table}", (schema, table, name),
    )


def _constraint(schema: str, table: str, name: str, kind: str, definition: str) -> SchemaObject:
    return SchemaObject(
        "constraint", f"{schema}.{table}.{name}",
        (("type", kind), ("definition", definition), ("validated", True)),
        f"{schema}.{table}", (schema, table, name),
    )


def _schema() -> SchemaObjects:
    objects = [
        _table("public", "people"), _table("billing", "accounts"), _table("public", "order lines"),
        _column("public", "people", "id", "bigint"),
        _column("public", "people", "manager_id", "bigint", nullable=True),
        _column("public", "people", "tags", "text[]", nullable=True),
        _constraint("public", "people", "people_pkey", "primary key", "PRIMARY KEY (id)"),
        _constraint("public", "people", "people_manager_fkey", "foreign key",
                    "FOREIGN KEY (manager_id) REFERENCES people(id)"),
        _column("billing", "accounts", "person_id", "bigint"),
        _column("billing", "accounts", "balance", "numeric(12,2)"),
        _constraint("billing", "accounts", "accounts_pkey", "primary key", "PRIMARY KEY (person_id)"),
        _constraint("billing", "accounts", "accounts_person_fkey", "foreign key",
                    "FOREIGN KEY (person_id) REFERENCES public.people(id)"),
        _column("public", "order lines", "line no", "integer"),
        _column("public", "order lines", "buyer", "bigint"),
        _constraint("public", "order lines", "lines_buyer_fkey", "foreign key",
                    'FOREIGN KEY (buyer) REFERENCES people(id)'),
    ]
    return SchemaObjects("test", {o.key: o for o in objects}, 180000)


def test_relations_across_schemas_self_references_and_quoted_names() -> None:
    schema = build_schema(_schema(), Extras())
    entities, relations = check_er_diagram(er_diagram(schema))
    assert entities == {"people", "billing__accounts", "order_lines"}
    assert sorted(relations) == [("people", "billing__accounts"), ("people", "order_lines"), ("people", "people")]
    text = er_diagram(schema)
    assert '    people ||--o| billing__accounts : "person_id"' in text  # the key is the primary key
    assert '    people |o--o{ people : "manager_id"' in text  # nullable self-reference
    assert "        text_array tags" in text
    assert "        integer line_no" in text

    people = schema.table("public.people")
    assert people is not None
    around = neighbours(schema, people)
    assert [t.name for t in around] == ["public.people", "billing.accounts", "public.order lines"]
    focus_entities, _ = check_er_diagram(er_diagram(schema, around, focus="public.people"))
    assert focus_entities == {"people", "billing__accounts", "order_lines"}
    assert [fk.table for fk in schema.referencing("public.people")] == [
        "billing.accounts", "public.order lines", "public.people",
    ]

    dot = dot_source(schema)
    assert '"public.people" -> "billing.accounts" [label="person_id"];' in dot
    assert '"public.people" -> "public.people" [label="manager_id"];' in dot


def test_attribute_types_are_one_mermaid_word() -> None:
    assert attribute_type("character varying(255)") == "varchar"
    assert attribute_type("timestamp with time zone") == "timestamptz"
    assert attribute_type("numeric(10,2)") == "numeric"
    assert attribute_type("integer[]") == "integer_array"
    assert attribute_type("public.order_status") == "order_status"
    assert attribute_type('"Weird Type"') == "_Weird_Type_"
