"""The stage types that ship with Gennaker. Importing this module registers them."""

from workflows.stages import (  # noqa: F401
    bake,
    child_pipeline,
    deploy,
    find_image,
    jenkins,
    judgment,
    manifests,
    preconditions,
    run_job,
    script,
    servergroups,
    variables,
    wait,
    webhook,
)
