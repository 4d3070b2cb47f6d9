"""SpEL → CEL: Spinnaker's `${ … }` expressions as Gennaker `${{ … }}` expressions, same meaning.

What maps (each is tested by running the CEL result, tests/unit/test_spinnaker_import.py):
- `parameters.x`, `parameters['x']` → `parameters.x` (renamed when the name is not a CEL identifier);
  `trigger.parameters.x` too.
- `trigger.…`: `type`, `user` stay; what Gennaker's triggers put in `trigger.payload` (docker `tag`,
  `repository`, `digest`; git `branch`, `hash`, `project`, `slug`; jenkins `job`, `master`,
  `buildInfo.number`; webhook `payload.*`) moves there. `trigger.properties` and `trigger.artifacts`
  have no Gennaker counterpart yet and are reported.
- `execution.id`, `execution.application`, `execution.name` (→ `execution.pipeline`).
- `#stage('Name').context.x` / `.outputs.x` / `.status` → `stages["<refId>"].outputs.x` …, with the
  stage's own literal config inlined and Jenkins' `buildInfo` renamed to Gennaker's outputs;
  `#stageByRefId`, `#stageExists`, `#judgment('Name')` → `judgments["<refId>"]`,
  `#pipelineId('Name')` → the saved pipeline's Gennaker name.
- evaluateVariables keys used bare (`${ myVar }`) → `variables.myVar`.
- `.equals()`, `.toString()`, `startsWith/endsWith/contains/size/isEmpty`,
  `?:` (null *or empty string* falls back, as in SpEL),
  ternaries, `matches` (SpEL matches the whole string: the regex is anchored), `and/or/not`,
  `eq/ne/lt/…`, `+` joining strings (the non-string side is converted, as Java does).
- `#toJson(x)`: the value printed as JSON (compact; map keys sorted — the same JSON value).
Anything else raises `Untranslatable` with the reason, and the caller keeps the SpEL for a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.spinnaker import spel
from core.spinnaker.cel_values import (
    ADD,
    AND,
    ATOM,
    COND,
    MUL,
    OR,
    REL,
    UNARY,
    Cel,
    Untranslatable,
    extend,
    literal,
    path,
    string_literal,
)
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


@dataclass
class Scope:
    """What a pipeline's expressions may refer to, learnt from the pipeline and the export."""

    stage_refs: dict[str, str] = field(default_factory=dict)  # Spinnaker stage name -> Gennaker refId
    ref_ids: dict[str, str] = field(default_factory=dict)  # Spinnaker refId -> Gennaker refId
    stage_types: dict[str, str] = field(default_factory=dict)  # Gennaker refId -> Spinnaker type
    stage_literals: dict[str, dict[str, Any]] = field(default_factory=dict)  # refId -> scalar config
    parameters: dict[str, str] = field(default_factory=dict)  # Spinnaker name -> Gennaker name
    variables: dict[str, str] = field(default_factory=dict)  # evaluateVariables key -> Gennaker key
    pipelines: dict[str, str] = field(default_factory=dict)  # Spinnaker name or id -> Gennaker name


# ---- names Spinnaker's context offers ---------------------------------------------------------

# Gennaker's triggers (api/triggers.py, api/routers/webhooks.py) keep these in trigger.payload.
_TRIGGER_PAYLOAD_KEYS = {"tag", "repository", "digest", "account", "branch", "hash", "project", "slug",
                         "job", "master", "buildNumber", "status", "application", "pipeline"}  # fmt: skip
_BUILD_INFO = {"number": "buildNumber", "url": "url", "result": "status"}
_EXECUTION_FIELDS = {"id": "id", "application": "application", "name": "pipeline"}


class Translator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    # ---- entry points ----

    def expression(self, source: str) -> Cel:
        try:
            tree = spel.parse(source)
        except spel.SpelSyntaxError as exc:
            raise Untranslatable(f"not SpEL that can be read: {exc}") from None
        return self.node(tree)

    # ---- nodes ----

    def node(self, node: Node) -> Cel:
        value = self._node(node)
        if value.pending:
            raise Untranslatable(f"{value.text} on its own has no Gennaker counterpart; use one of its fields")
        return value

    def _node(self, node: Node) -> Cel:
        if isinstance(node, Literal):
            return literal(node.value)
        if isinstance(node, Name):
            return self.name(node.name)
        if isinstance(node, Variable):
            raise Untranslatable(f"#{node.name} (SpEL's evaluation root) has no CEL counterpart")
        if isinstance(node, Function):
            return self.function(node)
        if isinstance(node, Property):
            return self.member(node.target, node.name, node.safe)
        if isinstance(node, Index):
            return self.index(node)
        if isinstance(node, Method):
            return self.method(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Unary):
            operand = self.node(node.operand)
            if node.op == "+":
                return operand
            return Cel(f"{node.op}{operand.wrapped(UNARY)}", UNARY)
        if isinstance(node, Ternary):
            condition, then, otherwise = self.node(node.condition), self.node(node.then), self.node(node.otherwise)
            return Cel(f"{condition.wrapped(OR)} ? {then.wrapped(OR)} : {otherwise.wrapped(COND)}", COND)
        if isinstance(node, Elvis):
            return self.elvis(self.node(node.value), self.node(node.fallback))
        if isinstance(node, ListLiteral):
            return Cel("[" + ", ".join(self.node(i).text for i in node.items) + "]")
        if isinstance(node, MapLiteral):
            entries = []
            for key, value in node.items:
                # SpEL reads a bare name as a map key ({a: 1} has key "a").
                key_cel = literal(key.name) if isinstance(key, Name) else self.node(key)
                entries.append(f"{key_cel.text}: {self.node(value).text}")
            return Cel("{" + ", ".join(entries) + "}")
        if isinstance(node, Unsupported):
            raise Untranslatable(f"SpEL {node.what} has no CEL counterpart")
        raise Untranslatable(f"unknown SpEL construct {type(node).__name__}")

    def name(self, name: str) -> Cel:
        if name == "parameters":
            return Cel("parameters", root="parameters")
        if name in ("trigger", "execution"):
            return Cel(name, root=name, pending=True)
        if name in self.scope.variables:
            return path("variables", self.scope.variables[name])
        raise Untranslatable(
            f"unknown name {name!r}: not parameters, trigger, execution or a key of an evaluateVariables stage"
        )

    def key_of(self, node: Node) -> str | None:
        """The key when `node` is a constant string (`['x']`), else None."""
        if isinstance(node, Literal) and isinstance(node.value, str):
            return node.value
        return None

    def index(self, node: Index) -> Cel:
        key = self.key_of(node.key)
        if key is not None:
            return self.member(node.target, key, False)
        target = self._node(node.target)
        if target.pending:
            raise Untranslatable(f"a computed key on {target.text} cannot be mapped")
        return Cel(f"{target.wrapped(ATOM)}[{self.node(node.key).text}]")

    def member(self, target_node: Node, key: str, safe: bool) -> Cel:
        target = self._node(target_node)
        if target.root == "parameters" and not target.keys:
            return path("parameters", self.scope.parameters.get(key, key))
        if target.root == "trigger":
            return self.trigger((*target.keys, key))
        if target.root == "execution":
            return self.execution((*target.keys, key))
        if target.root is not None and target.root.startswith("#stage:"):
            return self.stage_member(target, key)
        result = extend(target, key)
        if safe:
            return Cel(f"{target.wrapped(REL)} != null ? {result.text} : null", COND)
        return result

    def trigger(self, keys: tuple[str, ...]) -> Cel:
        first = keys[0]
        if first == "parameters" and len(keys) > 1:
            return path("parameters", self.scope.parameters.get(keys[1], keys[1]), *keys[2:])
        if first == "parameters":
            return Cel("trigger.parameters", root="trigger", keys=keys, pending=True)
        if first in ("type", "user"):
            return path("trigger", *keys)
        if first == "runAsUser":
            return path("trigger", "runAs", *keys[1:])
        if first == "source":
            return path("trigger", "source", *keys[1:])
        if first == "payload":
            return path("trigger", *keys)
        if first in _TRIGGER_PAYLOAD_KEYS:
            return path("trigger", "payload", *keys)
        if first == "buildInfo":
            if len(keys) == 1:
                return Cel("trigger.buildInfo", root="trigger", keys=keys, pending=True)
            if keys[1] in _BUILD_INFO:
                return path("trigger", "payload", _BUILD_INFO[keys[1]], *keys[2:])
        if first == "parentExecution":
            if len(keys) == 1:
                return Cel("trigger.parentExecution", root="trigger", keys=keys, pending=True)
            if keys[1] == "id":
                return path("trigger", "source")
        if first == "properties":
            raise Untranslatable(
                "trigger.properties (a Jenkins trigger's property file) has no Gennaker counterpart: run the "
                'job from a jenkins stage with propertyFile and read stages["<refId>"].outputs.properties'
            )
        if first == "artifacts":
            raise Untranslatable(
                "trigger.artifacts has no Gennaker counterpart yet; for a docker trigger use "
                "trigger.payload.repository and trigger.payload.tag"
            )
        raise Untranslatable(f"trigger.{'.'.join(keys)} is not something Gennaker's triggers provide")

    def execution(self, keys: tuple[str, ...]) -> Cel:
        first = keys[0]
        if first in _EXECUTION_FIELDS:
            return path("execution", _EXECUTION_FIELDS[first], *keys[1:])
        if first == "trigger":
            return self.trigger(keys[1:]) if len(keys) > 1 else Cel("trigger", root="trigger", pending=True)
        if first == "authentication":
            if len(keys) == 1:
                return Cel("execution.authentication", root="execution", keys=keys, pending=True)
            if keys[1] == "user":
                return path("trigger", "user")
        raise Untranslatable(f"execution.{'.'.join(keys)} has no Gennaker counterpart")

    # ---- #stage and friends ----

    def stage_ref(self, args: tuple[Node, ...], by: str) -> str:
        key = self.key_of(args[0]) if len(args) == 1 else None
        if key is None:
            raise Untranslatable(f"#{by} needs one constant name")
        table = self.scope.ref_ids if by == "stageByRefId" else self.scope.stage_refs
        if key not in table:
            raise Untranslatable(f"#{by}({key!r}): no such stage in this pipeline")
        return table[key]

    def stage_member(self, target: Cel, key: str) -> Cel:
        """`#stage('X')` followed by keys; the whole key path is mapped each time, since a later key
        can change the meaning of earlier ones (Jenkins' `buildInfo.number` is `buildNumber`)."""
        ref = (target.root or "").split(":", 1)[1]
        keys = (*target.keys, key)
        stage = f"stages[{string_literal(ref)}]"
        if keys[0] in ("context", "outputs"):
            rest = keys[1:]
            literals = self.scope.stage_literals.get(ref, {})
            if keys[0] == "context" and len(rest) == 1 and rest[0] in literals:
                return literal(literals[rest[0]])
            if rest and self.scope.stage_types.get(ref) == "jenkins":
                rest = _jenkins_output(rest)
            return Cel(path(stage, "outputs", *rest).text, root=target.root, keys=keys)
        if keys in (("status",), ("name",)):
            return Cel(path(stage, keys[0]).text, root=target.root, keys=keys)
        if keys == ("refId",):
            return literal(ref)
        if len(keys) > 1 and keys[0] in ("status", "name"):
            return extend(Cel(path(stage, keys[0]).text), keys[-1])
        raise Untranslatable(f"#stage(...).{'.'.join(keys)} has no Gennaker counterpart")

    def function(self, node: Function) -> Cel:
        name = node.name
        if name in ("stage", "stageByRefId"):
            ref = self.stage_ref(node.args, name)
            return Cel(f"stages[{string_literal(ref)}]", root=f"#stage:{ref}", pending=True)
        if name == "stageExists":
            key = self.key_of(node.args[0]) if len(node.args) == 1 else None
            if key is None:
                raise Untranslatable("#stageExists needs one constant name")
            return literal(key in self.scope.stage_refs or key in self.scope.ref_ids)
        if name in ("judgment", "judgement"):
            ref = self.stage_ref(node.args, name)
            return Cel(f"judgments[{string_literal(ref)}]")
        if name in ("pipelineId", "pipelineIdOrNull"):
            key = self.key_of(node.args[0]) if node.args else None
            if key is None or key not in self.scope.pipelines:
                if name == "pipelineIdOrNull":
                    return literal(None)
                raise Untranslatable(f"#pipelineId({key!r}): no pipeline of that name in the export")
            return literal(self.scope.pipelines[key])
        if name == "toJson" and len(node.args) == 1:
            inner = self.node(node.args[0])
            return Cel(inner.text, inner.prec, to_json=True)
        if name in ("toInt", "toFloat") and len(node.args) == 1:
            return Cel(f"{'int' if name == 'toInt' else 'double'}({self.node(node.args[0]).text})")
        if name == "toBoolean" and len(node.args) == 1:
            # Boolean.parseBoolean: true only for the text "true" (the CEL here has no bool()).
            value = self.node(node.args[0]).wrapped(ADD)
            return Cel(f'{value} == true || {value} == "true"', OR)
        if name in ("fromUrl", "jsonFromUrl", "propertiesFromUrl", "readJson", "readYaml", "yamlFromUrl"):
            raise Untranslatable(
                f"#{name} reads from the network or parses text at evaluation time; Gennaker expressions do no "
                "I/O: fetch it in a webhook or script stage and use that stage's outputs"
            )
        raise Untranslatable(f"#{name}() has no CEL counterpart")

    # ---- methods and operators ----

    def method(self, node: Method) -> Cel:
        if isinstance(node.target, Variable) and node.target.name == "root":
            raise Untranslatable(f"{node.name}() on the evaluation root has no CEL counterpart")
        target = self.node(node.target)
        args = [self.node(a) for a in node.args]
        name, count = node.name, len(args)
        this = target.wrapped(ATOM)
        if name == "equals" and count == 1:
            return Cel(f"{target.wrapped(ADD)} == {args[0].wrapped(ADD)}", REL)
        if name == "toString" and count == 0:
            return Cel(f"string({target.text})")
        if name in ("startsWith", "endsWith", "contains") and count == 1:
            if name == "contains" and not (args[0].is_literal and isinstance(args[0].literal, str)):
                raise Untranslatable(".contains() of a non-string: a list's or a string's? Write `x in list`")
            return Cel(f"{this}.{name}({args[0].text})")
        if name in ("size", "length") and count == 0:
            return Cel(f"size({target.text})")
        if name == "isEmpty" and count == 0:
            return Cel(f"size({target.text}) == 0", REL)
        if name == "matches" and count == 1:
            return self.matches(target, args[0])
        if name == "get" and count == 1:
            return Cel(f"{this}[{args[0].text}]")
        if name == "containsKey" and count == 1:
            return Cel(f"{args[0].wrapped(ADD)} in {target.wrapped(ADD)}", REL)
        raise Untranslatable(f".{name}() with {count} argument(s) has no CEL counterpart")

    def matches(self, subject: Cel, pattern: Cel) -> Cel:
        # Java's String.matches and SpEL's `matches` match the whole string; CEL's matches() searches.
        if pattern.is_literal and isinstance(pattern.literal, str):
            anchored = literal(f"^(?:{pattern.literal})$").text
        else:
            anchored = f'"^(?:" + {pattern.wrapped(MUL)} + ")$"'
        return Cel(f"{subject.wrapped(ATOM)}.matches({anchored})")

    def binary(self, node: Binary) -> Cel:
        left, right = self.node(node.left), self.node(node.right)
        op = node.op
        if op == "matches":
            return self.matches(left, right)
        if op in ("||", "&&"):
            prec = OR if op == "||" else AND
            return Cel(f"{left.wrapped(prec)} {op} {right.wrapped(prec + 1)}", prec)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return Cel(f"{left.wrapped(ADD)} {op} {right.wrapped(ADD)}", REL)
        if op == "+":
            left_text, right_text = self._concat_operands(left, right)
            return Cel(f"{left_text} + {right_text}", ADD)
        if op == "-":
            return Cel(f"{left.wrapped(ADD)} - {right.wrapped(MUL)}", ADD)
        if op in ("*", "/", "%"):
            return Cel(f"{left.wrapped(MUL)} {op} {right.wrapped(UNARY)}", MUL)
        raise Untranslatable(f"SpEL operator {op!r} has no CEL counterpart")

    @staticmethod
    def _concat_operands(left: Cel, right: Cel) -> tuple[str, str]:
        """Java's `+` turns the other side into text when one side is a string; CEL needs both strings."""

        def is_text(c: Cel) -> bool:
            return c.is_literal and isinstance(c.literal, str)

        if is_text(left) and not is_text(right):
            return left.wrapped(ADD), f"string({right.text})"
        if is_text(right) and not is_text(left):
            return f"string({left.text})" if left.prec < ADD else left.wrapped(ADD), right.wrapped(MUL)
        return left.wrapped(ADD), right.wrapped(MUL)

    def elvis(self, value: Cel, fallback: Cel) -> Cel:
        """`a ?: b`: b when a is missing, null or the empty string (Spring's Elvis treats "" as null)."""
        guards: list[str] = []
        if value.root is not None and not value.root.startswith("#") and value.keys:
            prefix = path(value.root)
            for key in value.keys:
                guards.append(f"{string_literal(key)} in {prefix.wrapped(ADD)}")
                prefix = extend(prefix, key)
        shown = value.wrapped(ADD)
        guards += [f"{shown} != null", f'{shown} != ""']
        return Cel(f"{' && '.join(guards)} ? {value.wrapped(OR)} : {fallback.wrapped(COND)}", COND)


def _jenkins_output(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Spinnaker's Jenkins stage context → Gennaker's jenkins stage outputs (activities/jenkins.py)."""
    if keys[0] == "buildInfo" and len(keys) > 1:
        renamed = {"number": "buildNumber", "url": "url", "result": "result", "artifacts": "artifacts"}
        if keys[1] in renamed:
            return (renamed[keys[1]], *keys[2:])
    if keys[0] in ("buildNumber", "url", "result", "artifacts", "properties", "master", "job"):
        return keys
    if keys[0] == "propertyFileContents":
        return ("properties", *keys[1:])
    # Property-file values sit at the top of Spinnaker's Jenkins stage context.
    return ("properties", *keys)
