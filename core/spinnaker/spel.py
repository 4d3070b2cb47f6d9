"""A parser for the part of Spring Expression Language (SpEL) that Spinnaker pipelines use.

It turns one expression (the text between `${` and `}`) into a small tree that `translate.py` maps
to CEL. Grammar and precedence follow Spring's reference ("Language Reference": literals, properties
and indexers, methods, operators incl. `matches`, ternary, Elvis, safe navigation, selection and
projection, `#variables` and `#functions()`). Forms we cannot carry over (types `T(...)`, `new`,
bean references `@x`, assignment) still parse into `Unsupported` nodes so the report can name them.

The tree's node types are in `spel_ast.py`. `split_template` finds the `${ … }` parts of a string
the way Spring's template parser does: braces, brackets and quoted strings nest, so
`${ {'a': 1}['a'] }` is one expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.spinnaker.spel_ast import (
    Binary,
    Elvis,
    Function,
    Index,
    ListLiteral,
    Literal,
    MapLiteral,
    Method,
    Name,
    Node,
    Property,
    Ternary,
    Unary,
    Unsupported,
    Variable,
)


class SpelSyntaxError(ValueError):
    pass


# ---- tokens -----------------------------------------------------------------------------------

_WORD_OPERATORS = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "le": "<=",
    "ge": ">=",
    "div": "/",
    "mod": "%",
    "matches": "matches",
    "instanceof": "instanceof",
    "between": "between",
}
_SYMBOLS = sorted(
    [
        ".?[", ".![", ".^[", ".$[", "?.", "?:", "==", "!=", "<=", ">=", "&&", "||", "++", "--",
        "(", ")", "[", "]", "{", "}", ",", ".", "?", ":", "<", ">", "!", "+", "-", "*", "/", "%",
        "^", "=", "@", "#",
    ],
    key=len,
    reverse=True,
)  # fmt: skip


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "str", "ident", "op", "end"
    text: str
    value: Any = None


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"":
            value, i = _string(source, i)
            out.append(_Token("str", ch, value))
        elif ch.isdigit():
            start = i
            while i < n and (source[i].isalnum() or source[i] == "."):
                if source[i] == "." and not (i + 1 < n and source[i + 1].isdigit()):
                    break
                i += 1
            out.append(_Token("num", source[start:i], _number(source[start:i])))
        elif ch.isalpha() or ch in "_$":
            start = i
            while i < n and (source[i].isalnum() or source[i] in "_$"):
                i += 1
            word = source[start:i]
            lowered = word.lower()
            after_dot = bool(out) and out[-1].kind == "op" and out[-1].text in (".", "?.")
            if lowered in _WORD_OPERATORS and not after_dot:
                out.append(_Token("op", _WORD_OPERATORS[lowered]))
            else:
                out.append(_Token("ident", word))
        else:
            symbol = next((s for s in _SYMBOLS if source.startswith(s, i)), None)
            if symbol is None:
                raise SpelSyntaxError(f"unexpected character {ch!r} at {i}")
            out.append(_Token("op", symbol))
            i += len(symbol)
    out.append(_Token("end", ""))
    return out


def _string(source: str, start: int) -> tuple[str, int]:
    """A SpEL string literal: the quote doubled inside stands for itself ('it''s')."""
    quote = source[start]
    i = start + 1
    chars: list[str] = []
    while i < len(source):
        if source[i] == quote:
            if i + 1 < len(source) and source[i + 1] == quote:
                chars.append(quote)
                i += 2
                continue
            return "".join(chars), i + 1
        chars.append(source[i])
        i += 1
    raise SpelSyntaxError(f"unterminated string starting at {start}")


def _number(text: str) -> int | float:
    cleaned = text.rstrip("lLfFdD") if not text.lower().startswith("0x") else text
    try:
        if cleaned.lower().startswith("0x"):
            return int(cleaned, 16)
        if any(c in cleaned for c in ".eE") or text[-1:] in "fFdD":
            return float(cleaned)
        return int(cleaned)
    except ValueError:
        raise SpelSyntaxError(f"not a number: {text!r}") from None


# ---- parser -----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.pos = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def accept(self, *ops: str) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in ops:
            self.pos += 1
            return token.text
        return None

    def expect(self, op: str) -> None:
        if self.accept(op) is None:
            raise SpelSyntaxError(f"expected {op!r}, found {self.peek().text or 'end'!r}")

    def parse(self) -> Node:
        node = self.expression()
        if self.peek().kind != "end":
            raise SpelSyntaxError(f"unexpected {self.peek().text!r}")
        return node

    def expression(self) -> Node:
        node = self.logical_or()
        if self.accept("?:"):
            return Elvis(node, self.expression())
        if self.accept("?"):
            then = self.expression()
            self.expect(":")
            return Ternary(node, then, self.expression())
        if self.accept("="):
            self.expression()
            return Unsupported("assignment (=)")
        return node

    def logical_or(self) -> Node:
        node = self.logical_and()
        while self.accept("||"):
            node = Binary("||", node, self.logical_and())
        return node

    def logical_and(self) -> Node:
        node = self.relational()
        while self.accept("&&"):
            node = Binary("&&", node, self.relational())
        return node

    def relational(self) -> Node:
        node = self.sum()
        op = self.accept("==", "!=", "<", "<=", ">", ">=", "matches", "instanceof", "between")
        if op is not None:
            node = Binary(op, node, self.sum())
        return node

    def sum(self) -> Node:
        node = self.product()
        while (op := self.accept("+", "-")) is not None:
            node = Binary(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.power()
        while (op := self.accept("*", "/", "%")) is not None:
            node = Binary(op, node, self.power())
        return node

    def power(self) -> Node:
        node = self.unary()
        if self.accept("^"):
            node = Binary("^", node, self.unary())
        if self.accept("++", "--"):
            return Unsupported("increment/decrement")
        return node

    def unary(self) -> Node:
        op = self.accept("!", "-", "+")
        if op is not None:
            return Unary(op, self.unary())
        if self.accept("++", "--"):
            self.unary()
            return Unsupported("increment/decrement")
        return self.postfix(self.primary())

    def arguments(self) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept(")"):
            return ()
        while True:
            args.append(self.expression())
            if self.accept(")"):
                return tuple(args)
            self.expect(",")

    def primary(self) -> Node:
        token = self.take()
        if token.kind in ("num", "str"):
            return Literal(token.value)
        if token.kind == "ident":
            word = token.text
            if word.lower() in ("true", "false"):
                return Literal(word.lower() == "true")
            if word.lower() == "null":
                return Literal(None)
            if word == "T" and self.accept("("):
                self._skip_balanced(")")
                return Unsupported("type reference T(...)")
            if word == "new":
                self._skip_constructor()
                return Unsupported("constructor (new ...)")
            if self.accept("("):
                return Method(Variable("root"), word, self.arguments())
            return Name(word)
        if token.kind == "op":
            if token.text == "(":
                node = self.expression()
                self.expect(")")
                return node
            if token.text == "#":
                name = self.take()
                if name.kind != "ident":
                    raise SpelSyntaxError("expected a name after #")
                if self.accept("("):
                    return Function(name.text, self.arguments())
                return Variable(name.text)
            if token.text == "{":
                return self.inline_collection()
            if token.text == "@":
                self.take()
                return Unsupported("bean reference (@...)")
        raise SpelSyntaxError(f"unexpected {token.text or 'end'!r}")

    def inline_collection(self) -> Node:
        if self.accept("}"):
            return ListLiteral(())
        if self.accept(":"):
            self.expect("}")
            return MapLiteral(())
        first = self.expression()
        if self.accept(":"):
            items = [(first, self.expression())]
            while self.accept(","):
                key = self.expression()
                self.expect(":")
                items.append((key, self.expression()))
            self.expect("}")
            return MapLiteral(tuple(items))
        values = [first]
        while self.accept(","):
            values.append(self.expression())
        self.expect("}")
        return ListLiteral(tuple(values))

    def postfix(self, node: Node) -> Node:
        while True:
            if (op := self.accept(".", "?.")) is not None:
                name = self.take()
                if name.kind != "ident":
                    raise SpelSyntaxError(f"expected a name after {op!r}")
                if self.accept("("):
                    node = Method(node, name.text, self.arguments(), safe=op == "?.")
                else:
                    node = Property(node, name.text, safe=op == "?.")
            elif self.accept("["):
                key = self.expression()
                self.expect("]")
                node = Index(node, key)
            elif (op := self.accept(".?[", ".![", ".^[", ".$[")) is not None:
                self.expression()
                self.expect("]")
                what = "projection .![...]" if op == ".![" else "selection " + op + "...]"
                node = Unsupported(what)
            else:
                return node

    def _skip_balanced(self, closing: str) -> None:
        depth = 1
        while depth:
            token = self.take()
            if token.kind == "end":
                raise SpelSyntaxError(f"missing {closing!r}")
            if token.kind == "op" and token.text in "([{":
                depth += 1
            elif token.kind == "op" and token.text in ")]}":
                depth -= 1

    def _skip_constructor(self) -> None:
        while self.peek().kind != "end" and not (self.peek().kind == "op" and self.peek().text in "(["):
            self.take()
        if self.accept("(") or self.accept("["):
            self._skip_balanced(")")
        self.postfix(Unsupported("new"))


def parse(source: str) -> Node:
    """Parse one SpEL expression; raise SpelSyntaxError when it is not SpEL we can read."""
    return _Parser(source).parse()


# ---- templates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplatePart:
    """Literal text, or (expression=True) the source between `${` and its closing `}`."""

    text: str
    expression: bool


def split_template(text: str) -> list[TemplatePart]:
    """Split a string into literal text and `${ … }` expressions; raise SpelSyntaxError when a
    `${` is never closed (Spring refuses such a template too)."""
    parts: list[TemplatePart] = []
    i = 0
    literal_start = 0
    while True:
        start = text.find("${", i)
        if start < 0:
            break
        end = _closing_brace(text, start + 2)
        if start > literal_start:
            parts.append(TemplatePart(text[literal_start:start], False))
        parts.append(TemplatePart(text[start + 2 : end], True))
        i = literal_start = end + 1
    if literal_start < len(text):
        parts.append(TemplatePart(text[literal_start:], False))
    return parts


def _closing_brace(text: str, i: int) -> int:
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            _, i = _string(text, i)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise SpelSyntaxError("'${' is never closed")


def has_template(text: str) -> bool:
    return "${" in text
