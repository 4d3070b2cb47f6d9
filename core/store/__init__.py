"""The saved-pipeline and token store (Spinnaker's front50): every save is a new immutable revision.

One engine per database per process (database.py), schema by Alembic migrations run on open
(migrate.py, migrations/), synchronous classes with an async face for event loops (aio.py).
"""

from core.store.aio import AsyncPipelineStore, AsyncTokenLookup
from core.store.pipelines import PipelineRevision, PipelineStore

__all__ = ["AsyncPipelineStore", "AsyncTokenLookup", "PipelineRevision", "PipelineStore"]
