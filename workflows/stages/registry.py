"""The one place stage types are known by name.

Adding a stage type is one module under workflows/stages/ with a `@register_stage` class (it is
imported by workflows/stages/builtin.py); the benchmark registers its `noop` type through the same
call. See docs/stage-types.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from workflows.stages.base import StageConfig

_STAGE_TYPES: dict[str, type[StageConfig]] = {}
_ALIASES: dict[str, type[StageConfig]] = {}  # old or Spinnaker names -> the class (StageConfig.aliases)

S = TypeVar("S", bound=type[StageConfig])


def register_stage(cls: S) -> S:
    field = cls.__pydantic_fields__.get("type")
    type_name = field.default if field is not None else None
    if not isinstance(type_name, str) or not type_name:
        raise TypeError(f"{cls.__name__} needs a `type: Literal[...] = '<name>'` field")
    existing = _STAGE_TYPES.get(type_name)
    if existing is not None and existing is not cls:
        raise ValueError(f"stage type {type_name!r} is registered twice ({existing.__name__}, {cls.__name__})")
    _STAGE_TYPES[type_name] = cls
    for alias in cls.aliases:
        taken = _STAGE_TYPES.get(alias) or _ALIASES.get(alias)
        if taken is not None and taken is not cls:
            raise ValueError(f"stage type alias {alias!r} of {cls.__name__} is taken by {taken.__name__}")
        _ALIASES[alias] = cls
    return cls


def _load_builtin() -> None:
    # Imported on first use rather than at module load: the stage modules import the state models,
    # which import this registry.
    import workflows.stages.builtin  # noqa: F401


def stage_class(type_name: str) -> type[StageConfig] | None:
    """The class of a stage type, by its name or one of its aliases."""
    _load_builtin()
    return _STAGE_TYPES.get(type_name) or _ALIASES.get(type_name)


def canonical_stage(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A stage as written, with an alias in `type` replaced by the type's own name."""
    out = dict(raw)
    cls = stage_class(str(out.get("type", "")))
    if cls is not None:
        out["type"] = cls.__pydantic_fields__["type"].default
    return out


def registered_stage_types() -> Mapping[str, type[StageConfig]]:
    _load_builtin()
    return dict(sorted(_STAGE_TYPES.items()))
