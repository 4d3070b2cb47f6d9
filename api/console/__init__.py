"""The Gennaker console (server-rendered pages at /console/) and the offline API docs (/docs, /redoc)."""

from api.console.docs import docs_router
from api.console.router import console_router

__all__ = ["console_router", "docs_router"]
