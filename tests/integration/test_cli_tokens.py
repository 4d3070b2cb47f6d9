"""`gennaker token create|list|revoke` against a real SQLite store, as an operator would use them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.store.tokens import TokenStore

GENNAKER = str(Path(sys.executable).parent / "gennaker")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GENNAKER, "token", *args], capture_output=True, text=True, timeout=60)


def test_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    created = run("create", "--subject", "alice", "--group", "shop-devs", "--name", "laptop", "--database-url", url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("gnk_") and "shown only now" in created.stderr
    store = TokenStore(url)
    try:
        info = store.lookup(token)
        assert info is not None and info.subject == "alice" and info.groups == ("shop-devs",)
        listed = run("list", "--database-url", url)
        assert listed.returncode == 0 and "alice" in listed.stdout and token not in listed.stdout
        assert run("revoke", str(info.id), "--database-url", url).returncode == 0
        assert store.lookup(token) is None
        again = run("revoke", str(info.id), "--database-url", url)
        assert again.returncode == 2 and "no live token" in again.stderr and "Traceback" not in again.stderr
    finally:
        store.close()
    # Only a digest is stored: the token itself appears nowhere in the database file.
    assert token.encode() not in (tmp_path / "gateway.db").read_bytes()
