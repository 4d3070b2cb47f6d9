"""The tree `spel.parse` makes of a SpEL expression: one frozen dataclass per construct."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Name:
    """A bare name, read from the root object (`parameters`, `trigger`, an evaluated variable)."""

    name: str


@dataclass(frozen=True)
class Variable:
    """`#name` without a call: `#root`, `#this`, or a variable set by a selection."""

    name: str


@dataclass(frozen=True)
class Function:
    """`#name(args)`: one of Spinnaker's helper functions (`#stage`, `#judgment`, `#toJson`, …)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Property:
    target: Node
    name: str
    safe: bool = False


@dataclass(frozen=True)
class Index:
    target: Node
    key: Node


@dataclass(frozen=True)
class Method:
    target: Node
    name: str
    args: tuple[Node, ...]
    safe: bool = False


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Ternary:
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Elvis:
    value: Node
    fallback: Node


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLiteral:
    items: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Unsupported:
    """A construct that parses but has no CEL counterpart (`T(...)`, `new`, selection, …)."""

    what: str


Node = (
    Literal
    | Name
    | Variable
    | Function
    | Property
    | Index
    | Method
    | Binary
    | Unary
    | Ternary
    | Elvis
    | ListLiteral
    | MapLiteral
    | Unsupported
)
