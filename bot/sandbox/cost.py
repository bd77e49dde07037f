"""Shopify's calculated query cost of a GraphQL document, requested (before execution) and actual (from the data)."""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "pageInfo" in named.fields


class QueryCost:
    """Shopify's calculated query cost: scalars and enums 0, objects (and lists of them) 1 plus their selection,
    connections 2 + first/last × (1 + a node's selection), `nodes(ids:)` its number of ids × (1 + a node's selection),
    mutation fields 10 + their payload's selection. Fields selected twice under one response key (say, in a fragment
    and beside it) are merged and costed once.

    With `data` None it gives the requested cost (the worst case, before execution); with the answer's data, the
    actual cost: null objects are free and connections count the nodes they returned.
    """

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]):
        self.schema = schema
        self.variables = variables
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def operation(self, operation: OperationDefinitionNode, data: dict | None = None) -> int:
        if operation.operation != OperationType.MUTATION:
            return self.selection(self.schema.query_type, [operation.selection_set], data)
        root = self.schema.mutation_type
        fields, _ = self._collect(root, [operation.selection_set])
        return sum(self._mutation_field(root, nodes, data) for nodes in fields.values())

    def _mutation_field(self, root: GraphQLObjectType, nodes: list[FieldNode], data: dict | None) -> int:
        payload_type = get_named_type(root.fields[nodes[0].name.value].type)
        payload = None if data is None else data.get(_key(nodes[0]))
        if data is not None and payload is None:
            return 10
        return 10 + self.selection(payload_type, _subselections(nodes), payload)

    def selection(self, parent: GraphQLNamedType, selection_sets: list[SelectionSetNode], data: dict | None) -> int:
        fields, branches = self._collect(parent, selection_sets)
        total = sum(self.field(parent, nodes, data) for nodes in fields.values())
        return total + max((self.selection(t, [s], data) for t, s in branches), default=0)

    def _collect(
        self, parent: GraphQLNamedType, selection_sets: list[SelectionSetNode]
    ) -> tuple[dict[str, list[FieldNode]], list[tuple[GraphQLNamedType, SelectionSetNode]]]:
        """Fields by response key, fragments on `parent` inlined; fragments on other types are alternatives."""
        fields: dict[str, list[FieldNode]] = {}
        branches: list[tuple[GraphQLNamedType, SelectionSetNode]] = []
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    fields.setdefault(_key(selection), []).append(selection)
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    selection = self.fragments[selection.name.value]
                condition = selection.type_condition
                branch_type = self.schema.get_type(condition.name.value) if condition else parent
                if branch_type is parent:
                    inner_fields, inner_branches = self._collect(parent, [selection.selection_set])
                    for key, nodes in inner_fields.items():
                        fields.setdefault(key, []).extend(nodes)
                    branches.extend(inner_branches)
                else:
                    branches.append((branch_type, selection.selection_set))
        return fields, branches

    def field(self, parent: GraphQLNamedType, nodes: list[FieldNode], data: dict | None) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0
        definition = parent.fields[name]
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        value = None
        if data is not None:
            value = data.get(_key(nodes[0]))
            if value is None:
                return 0
        if _is_connection(named):
            args = get_argument_values(definition, nodes[0], self.variables)
            return self.connection(named, nodes, args, value)
        if parent is self.schema.query_type and name == "nodes":  # each id may be an object: sized like a connection
            ids = get_argument_values(definition, nodes[0], self.variables)["ids"]
            return self._items(named, nodes, len(ids), value)
        items = value if isinstance(value, list) else [value]
        return 1 + max((self.selection(named, _subselections(nodes), item) for item in items), default=0)

    def connection(self, named: GraphQLObjectType, nodes: list[FieldNode], args: dict, value: dict | None) -> int:
        size = args.get("first") if args.get("first") is not None else args.get("last")
        if size is None:
            raise GraphQLError("you must provide one of first or last", nodes[:1])
        fields, _ = self._collect(named, _subselections(nodes))
        cost = 0
        for key, sub_nodes in fields.items():
            if sub_nodes[0].name.value not in ("nodes", "edges"):
                continue
            item_type = get_named_type(named.fields[sub_nodes[0].name.value].type)
            returned = None if value is None else value.get(key)
            cost = max(cost, self._items(item_type, sub_nodes, size, returned))
        return 2 + cost

    def _items(self, item_type: GraphQLObjectType, nodes: list[FieldNode], size: int, returned: list | None) -> int:
        if item_type.name.endswith("Edge"):  # edges { node { … } }: cost the node selection
            inner, _ = self._collect(item_type, _subselections(nodes))
            node_key = next((k for k, n in inner.items() if n[0].name.value == "node"), None)
            if node_key is None:
                return 0
            node_type = get_named_type(item_type.fields["node"].type)
            node_values = None if returned is None else [edge.get(node_key) for edge in returned]
            return self._items(node_type, inner[node_key], size, node_values)
        subs = _subselections(nodes)
        if returned is None:
            return size * (1 + self.selection(item_type, subs, None))
        return sum(1 + self.selection(item_type, subs, item) for item in returned if item)


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _subselections(nodes: list[FieldNode]) -> list[SelectionSetNode]:
    return [n.selection_set for n in nodes if n.selection_set]
