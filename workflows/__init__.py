"""Workflow-side orchestration: the pipeline model, the DAG runner and the stage types."""
