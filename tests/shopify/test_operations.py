"""Every document orderbot sends is valid against the Shopify Admin schema the repo holds, and uses no deprecated
field."""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    validate,
    visit,
)

from bot.sandbox.cost import QueryCost
from bot.sandbox.shopify import MAX_QUERY_COST, load_schema
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


def requested_cost(schema: GraphQLSchema, document: str, variables: dict) -> int:
    parsed = parse(document)
    [operation] = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    return QueryCost(schema, parsed, variables).operation(operation)


def test_a_page_and_a_batch_of_orders_are_the_largest_under_shopifys_maximum_cost(schema):
    """Sizes chosen from Shopify's cost rules: the most orders a request can carry under 1,000 requested points."""
    page = operations.ORDERS_PAGE_SIZE
    assert requested_cost(schema, operations.ORDERS_PAGE, {"first": page}) <= MAX_QUERY_COST
    assert requested_cost(schema, operations.ORDERS_PAGE, {"first": page + 1}) > MAX_QUERY_COST
    batch = operations.ORDERS_BY_ID_BATCH
    ids = [f"gid://shopify/Order/{i}" for i in range(batch + 1)]
    assert requested_cost(schema, operations.ORDERS_BY_ID, {"ids": ids[:batch]}) <= MAX_QUERY_COST
    assert requested_cost(schema, operations.ORDERS_BY_ID, {"ids": ids}) > MAX_QUERY_COST


def test_an_actions_check_asks_only_for_what_it_needs(schema):
    """A bulk archive's check costs one point an order; a click's read, without line items, a fraction of Order's."""
    ids = [f"gid://shopify/Order/{i}" for i in range(operations.ORDER_STATES_BATCH)]
    assert requested_cost(schema, operations.ORDER_STATES, {"ids": ids}) == len(ids)
    one = {"id": "gid://shopify/Order/1"}
    assert requested_cost(schema, operations.ORDER_WITHOUT_LINES, one) * 5 < requested_cost(
        schema, operations.ORDER, one
    )
