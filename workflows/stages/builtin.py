"""The stage types that ship with Gennaker: every module of this package, imported on first use
(workflows/stages/registry.py), registers its `@register_stage` classes. So adding a stage type is
adding a module here, and nothing else to edit.

Listing the package happens once per process, before any stage is validated; the set of modules is
fixed by the installed code, so every worker and every replay sees the same stage types.
"""

from __future__ import annotations

import importlib
import pkgutil

import workflows.stages

for _module in sorted(m.name for m in pkgutil.iter_modules(workflows.stages.__path__)):
    if _module != "builtin":
        importlib.import_module(f"workflows.stages.{_module}")
