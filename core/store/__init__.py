"""The saved-pipeline store (Spinnaker's front50): every save is a new immutable revision."""

from core.store.pipelines import PipelineRevision, PipelineStore

__all__ = ["PipelineRevision", "PipelineStore"]
