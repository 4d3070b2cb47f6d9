"""The stage types that ship with Gennaker. Importing this module registers them."""

from workflows.stages import (  # noqa: F401
    child_pipeline,
    judgment,
    preconditions,
    variables,
    wait,
)
