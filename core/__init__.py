"""Gennaker's shared core: what the gateway (`api/`) and the workers (`workers/`) both use.

It imports neither `api/` nor `workers/`; both import it (DESIGN.md, "Shared core").
"""
