"""CEL text built from translated SpEL: a value with its precedence (for parentheses), and for a path
its root and keys (so `?:` can test that each key exists, as SpEL reads a missing map key as null)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# CEL's reserved words cannot follow a dot.
_CEL_RESERVED = {"in", "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let",
                 "loop", "package", "namespace", "return", "var", "void", "while", "true", "false", "null"}  # fmt: skip


class Untranslatable(Exception):
    """An expression (or part) with no CEL counterpart; the message says why and what to do."""


ATOM, UNARY, MUL, ADD, REL, AND, OR, COND = 8, 7, 6, 5, 4, 3, 2, 1


@dataclass(frozen=True)
class Cel:
    text: str
    prec: int = ATOM
    # For a path (`parameters.x`, `stages["1"].outputs.y`): its root and keys, so `?:` can test
    # that each key exists before reading it (SpEL reads a missing map key as null).
    root: str | None = None
    keys: tuple[str, ...] = ()
    to_json: bool = False
    literal: Any = None
    is_literal: bool = False
    # A step on the way to a value (`trigger`, `#stage('x')`): only a following key gives it meaning.
    pending: bool = False

    def wrapped(self, prec: int) -> str:
        return self.text if self.prec >= prec else f"({self.text})"


def string_literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def literal(value: Any) -> Cel:
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = string_literal(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(literal(v).text for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{string_literal(str(k))}: {literal(v).text}" for k, v in value.items()) + "}"
    else:
        raise Untranslatable(f"cannot write {type(value).__name__} as a CEL literal")
    return Cel(text, literal=value, is_literal=True)


def path(root: str, *keys: str) -> Cel:
    text = root
    for key in keys:
        text += f".{key}" if _IDENTIFIER.match(key) and key not in _CEL_RESERVED else f"[{string_literal(key)}]"
    return Cel(text, root=root, keys=tuple(keys))


def extend(base: Cel, key: str) -> Cel:
    if base.root is not None:
        return path(base.root, *base.keys, key)
    suffix = f".{key}" if _IDENTIFIER.match(key) and key not in _CEL_RESERVED else f"[{string_literal(key)}]"
    return Cel(base.wrapped(ATOM) + suffix)
