"""The pure pieces of observability that workflow code uses as well as the gateway and workers: metric
names, the log context's variables, what counts as a deploy and its outcome, the label budget.

They live under workflows/ because workflow code records metrics (workflows/telemetry.py) and the
layers point one way: core/ and workers/ may import workflows/, never the reverse.
"""
