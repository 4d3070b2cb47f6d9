"""The composition root: the `gennaker` command, which alone wires the gateway (`api/`) and the
workers (`workers/`) together, for `gennaker api` and the embedded dev stack (`gennaker dev`).

Nothing imports this package; it imports everything.
"""
