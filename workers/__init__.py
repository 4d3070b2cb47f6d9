"""Processes: the worker, the embedded dev stack and the CLI. The only place that wires
workflows and activities to task queues."""
