"""Every document orderbot sends is valid against the Shopify Admin schema the repo holds, and uses no deprecated
field."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema, TypeInfo, TypeInfoVisitor, Visitor, parse, validate, visit

from bot.sandbox.shopify import load_schema
from bot.shopify import operations


def deprecated_uses(schema: GraphQLSchema, document: str) -> list[str]:
    type_info = TypeInfo(schema)
    found: list[str] = []

    class Deprecations(Visitor):
        def enter_field(self, node, *_):
            definition = type_info.get_field_def()
            if definition is not None and definition.deprecation_reason:
                found.append(f"field {node.name.value}")

        def enter_argument(self, node, *_):
            argument = type_info.get_argument()
            if argument is not None and argument.deprecation_reason:
                found.append(f"argument {node.name.value}")

        def enter_enum_value(self, node, *_):
            enum_value = type_info.get_enum_value()
            if enum_value is not None and enum_value.deprecation_reason:
                found.append(f"enum value {node.value}")

    visit(parse(document), TypeInfoVisitor(type_info, Deprecations()))
    return found


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return load_schema()


@pytest.mark.parametrize("name", sorted(operations.ALL_DOCUMENTS))
def test_document_is_valid_against_the_admin_schema(schema, name):
    errors = validate(schema, parse(operations.ALL_DOCUMENTS[name]))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("name", sorted(operations.ALL_DOCUMENTS))
def test_document_uses_no_deprecated_field(schema, name):
    assert deprecated_uses(schema, operations.ALL_DOCUMENTS[name]) == []


def test_the_deprecation_check_catches_a_deprecated_field(schema):
    # Customer.email is deprecated in 2026-04 (use defaultEmailAddress); the check must see it.
    document = 'query { order(id: "gid://shopify/Order/1") { customer { email } } }'
    assert deprecated_uses(schema, document) == ["field email"]


def test_every_module_level_document_is_listed():
    documents = {
        value
        for name, value in vars(operations).items()
        if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))
    }
    assert documents == set(operations.ALL_DOCUMENTS.values())


def test_mutations_ask_for_their_user_errors(schema):
    for name, document in operations.ALL_DOCUMENTS.items():
        if document.lstrip().startswith("mutation"):
            assert "serErrors {" in document, name
