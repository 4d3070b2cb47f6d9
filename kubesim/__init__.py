"""kubesim: a simulated Kubernetes API server for tests and the dev stack (not a real cluster).

It speaks the Kubernetes REST wire protocol over HTTP so the official `kubernetes` client works
against it unchanged. See docs/kubesim.md.
"""

from kubesim.server import Kubesim, Settings, create_app

__all__ = ["Kubesim", "Settings", "create_app"]
