"""A real Docker engine and a real distribution registry for the bake / find-image / registry tests.

- Engine: whatever answers at $DOCKER_HOST or /var/run/docker.sock; otherwise (as root) Debian's
  `dockerd` is started in the background with its own data-root, exec-root and socket under
  /tmp/gennaker-dockerd. Test sessions running at the same time share it through lease files
  (leases/<pid>, under a file lock); the last session to leave stops it, by the PID in its own
  pidfile. An engine the rig did not start is never stopped.
- Registry: Debian's `docker-registry` on a free loopback port with an htpasswd user (bcrypt hash
  from apache2-utils' `htpasswd -B`), storage in a temporary directory. Loopback registries may be
  plain HTTP for the engine, so no TLS is needed.

No public registry is reachable, so images are `FROM scratch` with Debian's static busybox.
Session fixtures are shared by several test modules through a reference count (`docker_rig`), so
the engine and the registry start once per session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.accounts import ProvidedAccount, RegistryAccount, SecretRef
from workers.devserver import free_port

ENGINE_DIR = Path("/tmp/gennaker-dockerd")
BUSYBOX = Path("/bin/busybox")
USERNAME, PASSWORD = "gennaker", "bake-s3cret"
SCRATCH_DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


def engine_answers(host: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _rig_lock() -> Iterator[Path]:
    """Serialises start/stop decisions between test sessions running at the same time."""
    import fcntl

    ENGINE_DIR.mkdir(parents=True, exist_ok=True)
    with (ENGINE_DIR / "rig.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        leases = ENGINE_DIR / "leases"
        leases.mkdir(exist_ok=True)
        yield leases


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rig_dockerd_pid() -> int | None:
    """The PID of the dockerd this rig started (its pidfile, checked against its command line)."""
    try:
        pid = int((ENGINE_DIR / "dockerd.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"dockerd" in cmdline and str(ENGINE_DIR).encode() in cmdline else None


@dataclass
class DockerEngine:
    host: str
    process: subprocess.Popen[bytes] | None = None  # set only when this session started dockerd
    leased: bool = False  # the rig's own dockerd, shared with other sessions through lease files

    @classmethod
    def ensure(cls) -> DockerEngine:
        own = f"unix://{ENGINE_DIR / 'docker.sock'}"
        for host in (os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"):
            if host and engine_answers(host):
                return cls(host)  # someone else's engine: used, never stopped
        dockerd = shutil.which("dockerd")
        if dockerd is None and not engine_answers(own):
            pytest.skip("no Docker engine answers and dockerd is not installed (scripts/setup-system.sh)")
        with _rig_lock() as leases:
            (leases / str(os.getpid())).touch()
            if engine_answers(own):  # started by a session that is still running (or left behind)
                return cls(own, leased=True)
            if os.geteuid() != 0:
                (leases / str(os.getpid())).unlink()
                pytest.skip("no Docker engine answers and starting dockerd needs root")
            log = (ENGINE_DIR / "dockerd.log").open("ab")
            process = subprocess.Popen(
                [
                    str(dockerd),
                    "--data-root", str(ENGINE_DIR / "data"),
                    "--exec-root", str(ENGINE_DIR / "exec"),
                    "--pidfile", str(ENGINE_DIR / "dockerd.pid"),
                    "-H", own,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while not engine_answers(own):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    (leases / str(os.getpid())).unlink()
                    tail = (ENGINE_DIR / "dockerd.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"dockerd did not come up at {own}:\n{tail}")
                time.sleep(0.2)
            return cls(own, process, leased=True)

    def stop(self) -> None:
        """Give up this session's lease; the last session using the rig's dockerd stops it."""
        if not self.leased:
            return
        with _rig_lock() as leases:
            (leases / str(os.getpid())).unlink(missing_ok=True)
            others = []
            for lease in leases.iterdir():
                if lease.name.isdigit() and _alive(int(lease.name)):
                    others.append(lease)
                else:
                    lease.unlink(missing_ok=True)
            if others:
                return
            pid = self.process.pid if self.process is not None else _rig_dockerd_pid()
            if pid is None or not _alive(pid):
                return
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    break
                time.sleep(0.1)
            if self.process is not None:
                self.process.wait(10)


def bcrypt_htpasswd(user: str, password: str) -> str:
    if shutil.which("htpasswd"):
        done = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True)
        return done.stdout.strip() + "\n"
    try:
        import bcrypt  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("need apache2-utils' htpasswd (scripts/setup-system.sh) or python bcrypt for the registry")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"


@dataclass
class LocalRegistry:
    address: str
    directory: Path
    process: subprocess.Popen[bytes]
    auth: bool

    @classmethod
    def start(cls, directory: Path, *, auth: bool = True, notify: dict[str, Any] | None = None) -> LocalRegistry:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.skip("docker-registry is not installed (scripts/setup-system.sh)")
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
        }
        if auth:
            (directory / "htpasswd").write_text(bcrypt_htpasswd(USERNAME, PASSWORD))
            config["auth"] = {"htpasswd": {"realm": "gennaker-test", "path": str(directory / "htpasswd")}}
        if notify:
            config["notifications"] = {
                "endpoints": [{"name": "gennaker", "timeout": "2s", "threshold": 3, "backoff": "200ms", **notify}]
            }
        (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        log = (directory / "registry.log").open("ab")
        process = subprocess.Popen([binary, "serve", str(directory / "config.yml")], stdout=log, stderr=log)
        registry = cls(f"127.0.0.1:{port}", directory, process, auth)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{registry.address}/v2/", timeout=1).status_code in (200, 401):
                    return registry
            if process.poll() is not None or time.monotonic() > deadline:
                registry.stop()
                raise RuntimeError(f"docker-registry did not start: {(directory / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def http(self) -> httpx.Client:
        auth = (USERNAME, PASSWORD) if self.auth else None
        return httpx.Client(base_url=f"http://{self.address}", auth=auth, timeout=10)

    def account(
        self,
        name: str,
        *,
        password: str = PASSWORD,
        repositories: list[str] | None = None,
        docker_host: str | None = None,
    ) -> RegistryAccount:
        """A RegistryAccount for this registry; the password sits in a file, as in production."""
        secret = self.directory / f"{name}.password"
        secret.write_text(password + "\n")
        return RegistryAccount(
            name=name,
            address=self.address,
            insecure=True,
            username=USERNAME if self.auth else None,
            password=SecretRef(file=secret) if self.auth else None,
            repositories=repositories or [],
            docker_host=docker_host,
        )

    def push_synthetic(self, repository: str, tag: str, created: datetime, note: str = "") -> str:
        """Push a tiny image (one small layer, `created` in its config) through the HTTP API; its digest."""
        with self.http() as http:
            layer = f"{repository}:{tag}:{note}".encode()
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": created.isoformat().replace("+00:00", "Z"),
                    "config": {"Labels": {"note": note}},
                    "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
                }
            ).encode()
            for blob in (layer, config):
                start = http.post(f"/v2/{repository}/blobs/uploads/")
                start.raise_for_status()
                location = start.headers["location"]  # keeps its own query (_state): append to it
                joiner = "&" if "?" in location else "?"
                http.put(f"{location}{joiner}digest={_digest(blob)}", content=blob).raise_for_status()
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {
                        "mediaType": "application/vnd.docker.container.image.v1+json",
                        "size": len(config),
                        "digest": _digest(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "size": len(layer),
                            "digest": _digest(layer),
                        }
                    ],
                }
            ).encode()
            put = http.put(
                f"/v2/{repository}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
            )
            put.raise_for_status()
            return put.headers["docker-content-digest"]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class DockerRig:
    engine: DockerEngine
    registry: LocalRegistry
    workdir: Path
    users: int = 0
    extra: list[LocalRegistry] = field(default_factory=list)

    def context(self, dockerfile: str = SCRATCH_DOCKERFILE, files: dict[str, str] | None = None) -> Path:
        """A fresh build context directory with busybox and `dockerfile`."""
        directory = Path(tempfile.mkdtemp(prefix="ctx-", dir=self.workdir))
        shutil.copy(BUSYBOX, directory / "busybox")
        (directory / "Dockerfile").write_text(dockerfile)
        for name, text in (files or {}).items():
            (directory / name).write_text(text)
        return directory


_RIG: DockerRig | None = None


def acquire_rig() -> DockerRig:
    global _RIG
    if _RIG is None:
        if not BUSYBOX.exists():
            pytest.skip("busybox-static is not installed (scripts/setup-system.sh)")
        workdir = Path(tempfile.mkdtemp(prefix="gennaker-rig-"))
        engine = DockerEngine.ensure()
        try:
            registry = LocalRegistry.start(workdir / "registry")
        except BaseException:
            engine.stop()
            raise
        _RIG = DockerRig(engine, registry, workdir)
    _RIG.users += 1
    return _RIG


def release_rig() -> None:
    global _RIG
    if _RIG is None:
        return
    _RIG.users -= 1
    if _RIG.users == 0:
        for registry in [_RIG.registry, *_RIG.extra]:
            registry.stop()
        _RIG.engine.stop()
        shutil.rmtree(_RIG.workdir, ignore_errors=True)
        _RIG = None


@pytest.fixture(scope="session", name="docker_rig")
def docker_rig_fixture() -> Iterator[DockerRig]:
    """Import this into a test module (`# noqa: F401`); tests then take `docker_rig`."""
    rig = acquire_rig()
    yield rig
    release_rig()


@contextlib.asynccontextmanager
async def serving(client: Client, provided: ProvidedAccount) -> AsyncIterator[ProvidedAccount]:
    """Run a worker for one registry account's task queue (as workers/main.py does) for a block."""
    worker = Worker(
        client,
        task_queue=provided.queue,
        activities=list(provided.activities),
        activity_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"registry-{provided.name}"),
    )
    async with worker:
        yield provided
    provided.close()
