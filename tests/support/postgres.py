"""A real PostgreSQL for the store's tests: Debian's binaries, a throwaway cluster on loopback.

`initdb` into a temp dir, `postgres` on a free loopback port (Unix socket in the data dir), ready
when a connection succeeds, stopped by PID (SIGINT: PostgreSQL's fast shutdown). PostgreSQL refuses
to run as root, so under root the cluster belongs to the `postgres` system user when there is one,
else `nobody`; the temp dir is made under /tmp and handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from workers.devserver import free_port

SUPERUSER = "gennaker"
READY_SECONDS = 60


def postgres_bin_dir() -> Path:
    """Newest /usr/lib/postgresql/<major>/bin with initdb (Debian's layout), or $GENNAKER_PG_BIN."""
    given = os.environ.get("GENNAKER_PG_BIN")
    candidates = [Path(given)] if given else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    pytest.fail("PostgreSQL binaries not found: run scripts/setup-system.sh (Debian package `postgresql`)")


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


@dataclass
class PostgresServer:
    port: int
    process: subprocess.Popen[bytes]
    base_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, checkpoint, exit
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bin_dir = postgres_bin_dir()
    owner = _run_as()
    base_dir = Path(tempfile.mkdtemp(prefix="gennaker-pg-"))
    data_dir = base_dir / "data"
    as_owner: dict[str, object] = {}
    if owner is not None:
        os.chown(base_dir, owner.pw_uid, owner.pw_gid)
        as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(base_dir)}
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        env=env,
        cwd=base_dir,
        **as_owner,  # type: ignore[arg-type]
    )
    port = free_port()
    log = (base_dir / "postgres.log").open("wb")
    process = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(base_dir),
            # A test cluster: durability traded for speed.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=base_dir,
        **as_owner,  # type: ignore[arg-type]
    )
    log.close()  # the child holds its own copy
    server = PostgresServer(port=port, process=process, base_dir=base_dir)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            output = (base_dir / "postgres.log").read_text(errors="replace")
            server.stop()
            pytest.fail(f"postgres exited with {process.returncode} before accepting connections:\n{output}")
        try:
            with psycopg.connect(server.dsn(), connect_timeout=2):
                return server
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.05)  # polling for the accept, not waiting blindly: the loop ends on the event


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
