"""The one place stage types are known by name.

Adding a stage type is one module with a `@register_stage` class plus its import in
workflows/stages/__init__.py; the benchmark registers its `noop` type through the same call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from workflows.stages.base import StageConfig

_STAGE_TYPES: dict[str, type[StageConfig]] = {}

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
    return cls


def _load_builtin() -> None:
    # Imported on first use rather than at module load: the stage modules import the state models,
    # which import this registry.
    import workflows.stages.builtin  # noqa: F401


def stage_class(type_name: str) -> type[StageConfig] | None:
    _load_builtin()
    return _STAGE_TYPES.get(type_name)


def registered_stage_types() -> Mapping[str, type[StageConfig]]:
    _load_builtin()
    return dict(sorted(_STAGE_TYPES.items()))
