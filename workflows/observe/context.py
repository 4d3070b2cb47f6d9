"""Where a log line comes from, beyond what Temporal's loggers add: the stage and the account.

Plain context variables, so workflow code can set them (each stage runs in its own asyncio task,
and a task copies the context it was created in) and the log formatter can read them.
"""

from __future__ import annotations

from contextvars import ContextVar

STAGE_REF: ContextVar[str | None] = ContextVar("gennaker_stage_ref", default=None)
ACCOUNT: ContextVar[str | None] = ContextVar("gennaker_account", default=None)
