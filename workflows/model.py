"""The pipeline spec: Spinnaker's pipeline JSON shape, validated with pydantic.

`parse_pipeline(data)` is the entry point for anything a person wrote (API body, CLI file, saved
config): it returns a PipelineSpec or raises PipelineInvalid with one FieldError per problem, each
naming the stage (by refId) and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    create_model,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from workflows.artifacts import MAX_EXPECTED_ARTIFACTS, ExpectedArtifact
from workflows.expressions import condition_syntax_errors, syntax_errors
from workflows.stages.base import StageConfig
from workflows.stages.registry import canonical_stage, registered_stage_types, stage_class
from workflows.triggers import Trigger

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Bounds (issue 11; docs/security.md). 500 stages start within one workflow task on a loaded
# 2-core machine (tests/security/test_runner_scale.py); 10,000 would not fit Temporal's payloads.
MAX_STAGES = 500
MAX_TRIGGERS = 20
# Parameter values are expression context and workflow input: keep them small.
MAX_PARAMETER_BYTES = 16_384
MAX_PARAMETERS_BYTES = 65_536


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. stages[deploy].waitTime")
    message: str


class PipelineInvalid(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class PipelineParameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str | None = None
    description: str | None = None
    required: bool = False
    default: Any = None
    options: list[str] | None = Field(default=None, description="If set, the value must be one of these")


class PipelineNotification(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["email", "slack", "sms", "webhook"]
    address: str = Field(min_length=1)
    when: list[str] = Field(default_factory=list)
    message: dict[str, Any] = Field(default_factory=dict)


def _stage_from_dict(value: Any) -> Any:
    if isinstance(value, StageConfig) or not isinstance(value, Mapping):
        return value
    cls = stage_class(str(value.get("type", "")))
    if cls is None:
        raise ValueError(f"unknown stage type {value.get('type')!r}")
    return cls.model_validate(canonical_stage(value))


# Stage types live in a registry (one module each, plus the benchmark's), so the union is resolved
# at validation time rather than spelled out here; SerializeAsAny keeps subclass fields on dump.
AnyStage = Annotated[SerializeAsAny[StageConfig], BeforeValidator(_stage_from_dict)]


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    application: str = Field(pattern=NAME_PATTERN, description="Application the pipeline belongs to")
    name: str = Field(pattern=NAME_PATTERN, description="Pipeline name, unique within the application")
    description: str | None = None
    parameters: list[PipelineParameter] = Field(default_factory=list)
    # Bounded: each trigger is a schedule or an index entry every delivery is matched against.
    triggers: list[Trigger] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    notifications: list[PipelineNotification] = Field(default_factory=list)
    serviceAccount: str | None = Field(
        default=None, description="Identity that trigger-started runs act as (recorded as trigger.runAs)"
    )
    expectedArtifacts: list[ExpectedArtifact] = Field(
        default_factory=list,
        max_length=MAX_EXPECTED_ARTIFACTS,
        description="Artifacts the pipeline needs from its trigger (or a prior execution, or a default), by id",
    )
    limitConcurrent: bool = Field(default=False, description="At most one running execution")
    keepWaitingPipelines: bool = False
    stages: list[AnyStage] = Field(min_length=1)

    def stage(self, ref_id: str) -> StageConfig:
        for stage in self.stages:
            if stage.refId == ref_id:
                return stage
        raise KeyError(ref_id)

    def descendants(self, ref_id: str) -> set[str]:
        """refIds downstream of `ref_id` (not including it)."""
        children: dict[str, list[str]] = {}
        for stage in self.stages:
            for parent in stage.requisiteStageRefIds:
                children.setdefault(parent, []).append(stage.refId)
        found: set[str] = set()
        pending = list(children.get(ref_id, []))
        while pending:
            ref = pending.pop()
            if ref not in found:
                found.add(ref)
                pending.extend(children.get(ref, []))
        return found


def _location(loc: tuple[int | str, ...], data: Any = None, missing: bool = False) -> str:
    """A field path people recognise. pydantic puts union members into locations (`waitTime.float`,
    `triggers[1].git.branch`); walking the submitted data tells real keys from such tags."""
    out = ""
    current = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(part, int) and isinstance(current, list) and part < len(current):
            out, current = out + f"[{part}]", current[part]
        elif isinstance(current, Mapping) and part in current:
            out, current = out + (f".{part}" if out else str(part)), current[part]
        elif data is None or (missing and last):
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        # else: a union member's tag, not a place in the document
    return out


def _pydantic_errors(exc: ValidationError, prefix: str, data: Any = None) -> Iterator[FieldError]:
    merged: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        where = _location(tuple(err["loc"]), data, missing=err["type"] == "missing")
        field = f"{prefix}.{where}" if where and prefix else (where or prefix)
        message = err["msg"]
        if err["type"] == "string_pattern_mismatch" and r"\$\{\{" in str(err.get("ctx", {}).get("pattern", "")):
            message = "or one whole ${{ }} expression"  # the Expression alternative of a typed field
        if message not in merged.setdefault(field, []):
            merged[field].append(message)
    for field, messages in merged.items():
        yield FieldError(field=field, message="; ".join(messages))


def _stage_label(index: int, raw: Mapping[str, Any]) -> str:
    ref = raw.get("refId")
    return f"stages[{ref}]" if isinstance(ref, str) and ref else f"stages[{index}]"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _stage_errors(index: int, raw: Any, known_types: Mapping[str, type[StageConfig]]) -> list[FieldError]:
    if not isinstance(raw, Mapping):
        return [FieldError(field=f"stages[{index}]", message="must be an object")]
    label = _stage_label(index, raw)
    type_name = raw.get("type")
    if not type_name:
        return [FieldError(field=f"{label}.type", message="is required")]
    cls = known_types.get(str(type_name)) or stage_class(str(type_name))
    if cls is None:
        known = ", ".join(known_types)
        return [FieldError(field=f"{label}.type", message=f"unknown stage type {type_name!r}; known: {known}")]
    try:
        stage = cls.model_validate(canonical_stage(raw))
    except ValidationError as exc:
        return list(_pydantic_errors(exc, label, raw))
    errors = [FieldError(field=f"{label}.{path}", message=message) for path, message in stage.problems()]
    for path, text in _strings({k: v for k, v in raw.items() if k != "stageEnabled"}, label):
        errors += [FieldError(field=path, message=m) for m in syntax_errors(text)]
    enabled = raw.get("stageEnabled")
    if isinstance(enabled, Mapping) and isinstance(enabled.get("expression"), str):
        errors += [
            FieldError(field=f"{label}.stageEnabled.expression", message=m)
            for m in condition_syntax_errors(enabled["expression"])
        ]
    return errors


def _graph_errors(stages: list[StageConfig]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for stage in stages:
        if stage.refId in seen:
            errors.append(FieldError(field=f"stages[{stage.refId}].refId", message="duplicate refId"))
        seen.add(stage.refId)
    for stage in stages:
        for parent in stage.requisiteStageRefIds:
            if parent == stage.refId:
                errors.append(
                    FieldError(field=f"stages[{stage.refId}].requisiteStageRefIds", message="stage depends on itself")
                )
            elif parent not in seen:
                errors.append(
                    FieldError(
                        field=f"stages[{stage.refId}].requisiteStageRefIds",
                        message=f"unknown refId {parent!r}",
                    )
                )
    if errors:
        return errors
    cycle = _find_cycle({s.refId: s.requisiteStageRefIds for s in stages})
    if cycle:
        errors.append(
            FieldError(
                field=f"stages[{cycle[0]}].requisiteStageRefIds",
                message="dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            )
        )
    return errors


def _artifact_id_errors(spec: PipelineSpec) -> list[FieldError]:
    """Expected artifact ids are unique across the pipeline and its stages, and every id a stage
    reads is declared somewhere (the pipeline, or a stage that produces it)."""
    errors: list[FieldError] = []
    declared: dict[str, str] = {}
    places = [("expectedArtifacts", spec.expectedArtifacts)]
    places += [(f"stages[{s.refId}].expectedArtifacts", s.expectedArtifacts) for s in spec.stages]
    for where, expected in places:
        for item in expected:
            if item.id in declared:
                errors.append(
                    FieldError(
                        field=f"{where}[{item.id}]",
                        message=f"duplicate expected artifact id (also in {declared[item.id]})",
                    )
                )
            declared.setdefault(item.id, where)
    for stage in spec.stages:
        for path, artifact_id in stage.consumed_artifact_ids():
            if "${{" not in artifact_id and artifact_id not in declared:
                known = ", ".join(sorted(declared)) or "none"
                errors.append(
                    FieldError(
                        field=f"stages[{stage.refId}].{path}",
                        message=f"no expected artifact has id {artifact_id!r} (declared: {known})",
                    )
                )
    return errors


def _find_cycle(parents: Mapping[str, list[str]]) -> list[str] | None:
    """One dependency cycle (each stage followed by the one it waits for), or None."""
    try:
        TopologicalSorter(parents).prepare()
    except CycleError as exc:
        # graphlib lists each node before the one that depends on it and repeats the first at the
        # end; read backwards, each stage is followed by the one it waits for.
        cycle: list[str] = list(reversed(exc.args[1]))[:-1]
        return cycle
    return None


# Bounds on a YAML document (issue 11: a 564-byte alias bomb expanded to 10^7 nodes, 566 MB; 20k
# levels of nesting overflowed the parser's recursion). Aliases stay usable for normal reuse.
MAX_YAML_NODES = 50_000  # counted with every alias expanded (a 1,000-stage pipeline is ~20k)
MAX_YAML_DEPTH = 64


class YamlTooLarge(ValueError):
    """A YAML document over one of the bounds; the message names the limit."""


_YamlBase: Any = yaml.SafeLoader
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastSafeLoader(Composer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (C) with PyYAML's composer (Python), so that composing can be
        bounded node by node; the pure-Python scanner needs ~15 s for 1 MB of YAML on a busy machine."""

        def __init__(self, stream: str | bytes) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _YamlBase = _FastSafeLoader


class _PlainYamlLoader(_YamlBase):  # type: ignore[misc]
    """YAML without implicit timestamps: `2024-01-01` stays a string, as it would in JSON. Nesting
    and node count are bounded while composing (before recursion gets deep, before a huge document
    is built), alias expansion before constructing."""

    _depth = 0
    _nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlTooLarge(f"YAML is nested deeper than the limit of {MAX_YAML_DEPTH} levels")
            if self._nodes > MAX_YAML_NODES:
                raise YamlTooLarge(f"YAML has more than the limit of {MAX_YAML_NODES} nodes")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_PlainYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has with every alias expanded (memoised per node, so counting
    costs as much as the text, not the expansion); YamlTooLarge past MAX_YAML_NODES or on a cycle."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if not children_done:
            if key in pending:
                raise YamlTooLarge("YAML aliases refer to themselves (a recursive structure)")
            pending.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        pending.discard(key)
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_YAML_NODES:
            raise YamlTooLarge(f"YAML has more than the limit of {MAX_YAML_NODES} nodes (aliases expanded)")
        sizes[key] = size
    return sizes.get(id(root), 1)


_BRACKETS = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)


def _check_flow_depth(text: str | bytes) -> None:
    """Refuse deep flow nesting before PyYAML sees it: its scanner re-checks every open flow level
    on every token, so 20k nested `[` cost seconds before the composer's depth check is reached.
    Brackets inside strings count too: a conservative bound no real pipeline comes near."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    depth = 0
    for char in raw.translate(None, _NOT_BRACKETS):
        depth = max(0, depth + _BRACKETS[char])
        if depth > MAX_YAML_DEPTH:
            raise YamlTooLarge(f"YAML is nested deeper than the limit of {MAX_YAML_DEPTH} levels")


def load_pipeline_text(text: str | bytes) -> Any:
    """Parse a pipeline document, YAML or JSON (YAML is a superset), into JSON-compatible values.
    Raises YamlTooLarge (a ValueError naming the limit) past MAX_YAML_NODES / MAX_YAML_DEPTH."""
    _check_flow_depth(text)
    loader = _PlainYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        if hasattr(loader, "dispose"):
            loader.dispose()


def parse_pipeline(data: Any) -> PipelineSpec:
    """Validate a pipeline a person wrote; raise PipelineInvalid listing every problem found."""
    if not isinstance(data, Mapping):
        raise PipelineInvalid([FieldError(field="pipeline", message="must be a JSON/YAML object")])
    known = registered_stage_types()
    raw_stages = data.get("stages")
    if isinstance(raw_stages, list) and len(raw_stages) > MAX_STAGES:
        raise PipelineInvalid(
            [FieldError(field="stages", message=f"{len(raw_stages)} stages; the limit is {MAX_STAGES} (MAX_STAGES)")]
        )
    errors: list[FieldError] = []
    if isinstance(raw_stages, list):
        for index, raw in enumerate(raw_stages):
            errors += _stage_errors(index, raw, known)
    try:
        spec = PipelineSpec.model_validate(dict(data))
    except ValidationError as exc:
        # Stage problems were reported above with refIds; keep pydantic's for the envelope only.
        errors += [e for e in _pydantic_errors(exc, "", data) if not e.field.startswith("stages[")]
        if raw_stages is not None and not isinstance(raw_stages, list):
            errors.append(FieldError(field="stages", message="must be a list of stages"))
        raise PipelineInvalid(errors or list(_pydantic_errors(exc, "", data))) from None
    if errors:
        raise PipelineInvalid(errors)
    errors = _graph_errors(spec.stages)
    errors += _artifact_id_errors(spec)
    names = [p.name for p in spec.parameters]
    errors += [
        FieldError(field=f"parameters[{n}]", message="duplicate parameter name")
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    if errors:
        raise PipelineInvalid(errors)
    return spec


def resolve_parameters(spec: PipelineSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Apply defaults and check required/options; unknown names are errors (typos must not vanish)."""
    errors: list[FieldError] = []
    declared = {p.name: p for p in spec.parameters}
    values: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            errors.append(FieldError(field=f"parameters.{name}", message="is not a parameter of this pipeline"))
    for param in spec.parameters:
        if param.name in given:
            value = given[param.name]
        elif param.default is not None:
            value = param.default
        elif param.required:
            errors.append(FieldError(field=f"parameters.{param.name}", message="is required"))
            continue
        else:
            value = None
        if param.options and value is not None and str(value) not in param.options:
            errors.append(
                FieldError(
                    field=f"parameters.{param.name}",
                    message=f"must be one of {', '.join(param.options)}; got {value!r}",
                )
            )
        size = _json_size(value)
        if size > MAX_PARAMETER_BYTES:
            errors.append(
                FieldError(
                    field=f"parameters.{param.name}",
                    message=f"is {size:,} bytes of JSON; the limit is {MAX_PARAMETER_BYTES:,} (MAX_PARAMETER_BYTES)",
                )
            )
        values[param.name] = value
    total = _json_size(values)
    if not errors and total > MAX_PARAMETERS_BYTES:
        errors.append(
            FieldError(
                field="parameters",
                message=f"are {total:,} bytes of JSON; the limit is {MAX_PARAMETERS_BYTES:,} (MAX_PARAMETERS_BYTES)",
            )
        )
    if errors:
        raise PipelineInvalid(errors)
    return values


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


def pipeline_json_schema() -> dict[str, Any]:
    """JSON Schema of a pipeline with every registered stage type as a `type`-discriminated union."""
    stage_types = tuple(registered_stage_types().values())
    union: Any = Annotated[Any, Field()]
    if stage_types:
        from typing import Union

        union = Annotated[Union[stage_types], Field(discriminator="type")]  # noqa: UP007
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in PipelineSpec.model_fields.items() if name != "stages"
    }
    fields["stages"] = (list[union], Field(min_length=1))
    model = create_model("Pipeline", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Gennaker pipeline"
    return schema
