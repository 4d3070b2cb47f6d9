"""Write a kubeconfig pointing at a kubesim, named so nobody mistakes it for a real cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "kubesim"
CONTEXT_NAME = "kubesim"
USER_NAME = "kubesim-admin"


def kubeconfig(url: str, token: str | None = None, namespace: str = "default") -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": url}}],
        "users": [{"name": USER_NAME, "user": user}],
        "contexts": [{"name": CONTEXT_NAME,
                      "context": {"cluster": CLUSTER_NAME, "user": USER_NAME, "namespace": namespace}}],
        "current-context": CONTEXT_NAME,
    }


def write_kubeconfig(path: Path, url: str, token: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(url, token), sort_keys=False))
    path.chmod(0o600)
    return path
