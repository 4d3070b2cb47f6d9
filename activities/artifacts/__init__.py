"""Artifacts on the worker: fetching (with the worker's credentials and egress policy), image
binding, and the content store for rendered manifests. Import the submodules directly; this package
stays import-light because workflow code imports `activities.artifacts.model`."""
