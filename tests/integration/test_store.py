"""The store against SQLite and a real PostgreSQL: revisions, the trigger index, migrations
(adopting create_all-era databases, two processes migrating one fresh database), the token cache."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, DateTime, Integer, String, Text, UniqueConstraint, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from temporalio.client import Client

import api.auth
import api.deps
import core.triggers
from core.settings import GennakerSettings
from core.store import PipelineStore
from core.store.aio import AsyncTokenLookup
from core.store.database import make_engine
from core.store.migrate import current_revision, head_revision, migration_lock
from core.store.schema import Base
from core.store.tokens import TokenCache, TokenStore
from core.store.trigger_index import trigger_key
from core.triggers import dispatch_registry_push
from tests.support.builders import wait
from tests.support.eventually import assert_eventually
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401 (session fixture)
from workers.devserver import TemporalDevServer
from workflows.model import PipelineSpec
from workflows.triggers import DockerTrigger, WebhookTrigger

GENNAKER = str(Path(sys.executable).parent / "gennaker")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "store"
# Made by the create_all-era store (commit 33fd132) with tests/fixtures/store/create_all_era.db.
CREATE_ALL_ERA_TOKEN = "gnk_EkiHPIeCCVdQ5smbNp8VIsyITTBJPKij9t-PPepYZP4"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def backend_store(database_url: str) -> Iterator[PipelineStore]:
    """A store of its own on each backend (not the session's `store`, which the session `client`'s
    worker uses: a module fixture of that name would shadow it)."""
    opened = PipelineStore(database_url)
    yield opened
    opened.close()


def pipeline(name: str, *triggers: dict[str, Any], application: str = "shop", stages: int = 1) -> dict[str, Any]:
    return {
        "application": application,
        "name": name,
        "triggers": list(triggers),
        "stages": [wait(f"w{i}", 1) for i in range(stages)],
    }


def docker(repository: str, **fields: Any) -> dict[str, Any]:
    return {"type": "docker", "account": "local", "repository": repository, **fields}


def docker_key(repository: str) -> str:
    key = trigger_key(DockerTrigger(account="local", repository=repository))
    assert key is not None
    return key


def candidates(store: PipelineStore, repository: str) -> list[tuple[str, int]]:
    return [(p.name, p.revision) for p in store.trigger_candidates("docker", docker_key(repository))]


def test_the_trigger_index_follows_saves_disables_and_deletes(backend_store: PipelineStore) -> None:
    assert backend_store.save("shop", "release", pipeline("release", docker("shop/a"))) == 1
    assert candidates(backend_store, "shop/a") == [("release", 1)]
    backend_store.save("shop", "release", pipeline("release", docker("shop/b"), {"type": "cron", "cron": "0 3 * * *"}))
    assert candidates(backend_store, "shop/a") == []
    assert candidates(backend_store, "shop/b") == [("release", 2)]
    backend_store.save("shop", "release", pipeline("release", docker("shop/b", enabled=False)))
    assert candidates(backend_store, "shop/b") == []
    backend_store.save("shop", "release", pipeline("release", docker("shop/b")))
    backend_store.save("other", "release", pipeline("release", docker("shop/b"), application="other"))
    found = {
        (p.application, p.name, p.revision) for p in backend_store.trigger_candidates("docker", docker_key("shop/b"))
    }
    assert found == {("shop", "release", 4), ("other", "release", 1)}
    assert backend_store.delete("shop", "release") == 5
    found = {(p.application, p.name) for p in backend_store.trigger_candidates("docker", docker_key("shop/b"))}
    assert found == {("other", "release")}
    # History stays whole: four saves and the tombstone.
    assert [(r.revision, r.deleted) for r in backend_store.revisions("shop", "release")] == [
        (1, False),
        (2, False),
        (3, False),
        (4, False),
        (5, True),
    ]


def test_pipelines_and_tokens_share_one_engine_per_process(database_url: str) -> None:
    pipelines, tokens = PipelineStore(database_url), TokenStore(database_url)
    try:
        assert pipelines.engine is tokens._engine
        token, _ = tokens.create("alice", [], "test")
        assert tokens.lookup(token) is not None
    finally:
        tokens.close()
        pipelines.close()


# A frozen copy of an old shape, restated on purpose: the adoption test needs the tables as the
# create_all-era code made them on PostgreSQL (SQLite has the file that code wrote), and neither
# core/store/schema.py (today's shape, trigger index included) nor migration 0001 (which may be
# edited) can stand in for history. That the adopted database ends at schema.py's shape is checked
# against schema.py itself (`schema_drift`).
class _CreateAllEra(DeclarativeBase):
    """The tables exactly as core/store made them with create_all before migrations (33fd132)."""


class _OldRevision(_CreateAllEra):
    __tablename__ = "pipeline_revisions"
    __table_args__ = (UniqueConstraint("application", "name", "revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    revision: Mapped[int] = mapped_column(Integer)
    config: Mapped[str] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _OldToken(_CreateAllEra):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    groups: Mapped[str] = mapped_column(Text, default="[]")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def _copy_create_all_era(database_url: str) -> None:
    """Put the create_all-era database in place: the SQLite file the old code wrote, or its rows
    copied into PostgreSQL tables made by the old code's create_all."""
    if database_url.startswith("sqlite"):
        shutil.copy(FIXTURES / "create_all_era.db", database_url.removeprefix("sqlite:///"))
        return
    old = create_engine(f"sqlite:///{FIXTURES / 'create_all_era.db'}")
    new = create_engine(database_url)
    try:
        _CreateAllEra.metadata.create_all(new)
        with Session(old) as source, Session(new) as target:
            for model in (_OldRevision, _OldToken):
                for row in source.query(model).all():
                    source.expunge(row)
                    target.merge(row)
            for table in ("pipeline_revisions", "api_tokens"):  # as pg_dump/restore leaves sequences
                target.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
            target.commit()
    finally:
        old.dispose()
        new.dispose()


def schema_drift(engine: Engine) -> list[Any]:
    """How the database's tables differ from core/store/schema.py (Alembic's autogenerate
    comparison: tables, columns, types, nullability, indexes, unique constraints); [] when none."""
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_a_create_all_era_database_is_adopted_without_losing_anything(database_url: str) -> None:
    _copy_create_all_era(database_url)
    probe = make_engine(database_url)
    assert current_revision(probe) is None  # never migrated
    store, tokens = PipelineStore(database_url), TokenStore(database_url)
    try:
        assert current_revision(probe) == head_revision()
        assert schema_drift(probe) == []
        release = store.get("shop", "release")
        assert release is not None and release.revision == 2 and release.author == "bob"
        assert [r.revision for r in store.revisions("shop", "release")] == [1, 2]
        assert store.get("shop", "gone") is None and [r.deleted for r in store.revisions("shop", "gone")] == [0, 1]
        info = tokens.lookup(CREATE_ALL_ERA_TOKEN)
        assert info is not None and info.subject == "alice" and info.groups == ("shop-devs",)
        # The trigger index was backfilled from the live revisions only.
        assert candidates(store, "shop/frontend") == [("release", 2)]
        assert candidates(store, "shop/old") == []
        gone = trigger_key(WebhookTrigger(source="gone", secret="s"))
        assert gone is not None and store.trigger_candidates("webhook", gone) == []
        assert store.save("shop", "release", pipeline("release", docker("shop/next"))) == 3
    finally:
        tokens.close()
        store.close()
        probe.dispose()


def _blocked_on(database_url: str, probe: Any) -> int:
    """How many processes wait for the migration lock right now."""
    if database_url.startswith("postgresql"):
        with probe.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                ).scalar_one()
            )
    lock_file = Path(database_url.removeprefix("sqlite:///") + ".migrate-lock")
    inode = os.stat(lock_file).st_ino
    waiting = [line for line in Path("/proc/locks").read_text().splitlines() if "->" in line]
    return sum(1 for line in waiting if line.split()[-3].endswith(f":{inode}"))


async def test_two_processes_migrate_one_fresh_database_at_once(database_url: str) -> None:
    probe = make_engine(database_url)
    try:
        # Hold the lock while both start, so they reach the upgrade together and race on release.
        with migration_lock(probe):
            upgrades = [
                await asyncio.create_subprocess_exec(
                    GENNAKER,
                    "db",
                    "upgrade",
                    "--database-url",
                    database_url,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for _ in range(2)
            ]

            async def waiting() -> int:
                return await asyncio.to_thread(_blocked_on, database_url, probe)

            await assert_eventually(waiting, lambda n: n == 2, what="both upgrades wait for the lock", timeout=60)
        outputs = [await asyncio.wait_for(p.communicate(), timeout=60) for p in upgrades]
        for process, (out, err) in zip(upgrades, outputs, strict=True):
            assert process.returncode == 0, err.decode()
            assert out.decode().strip() == f"store at revision {head_revision()}"
        assert current_revision(probe) == head_revision()
        assert schema_drift(probe) == []  # the migrations build what the store's models declare
        with probe.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        probe.dispose()


def test_db_upgrade_reads_the_configuration_file(tmp_path: Path) -> None:
    database = tmp_path / "from-config.db"
    config = tmp_path / "gennaker.yaml"
    config.write_text(f"database_url: sqlite:///{database}\n")
    done = subprocess.run([GENNAKER, "db", "upgrade", "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    probe = make_engine(f"sqlite:///{database}")
    assert current_revision(probe) == head_revision()
    probe.dispose()
    missing = subprocess.run(
        [GENNAKER, "db", "upgrade", "--config", str(tmp_path / "nope.yaml")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no such configuration file" in missing.stderr
    assert "Traceback" not in missing.stderr


async def test_a_delivery_parses_only_the_pipelines_that_watch_its_source(
    backend_store: PipelineStore, client: Client, temporal_server: TemporalDevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    application = f"idx{uuid.uuid4().hex[:8]}"
    for i in range(500):
        name = f"p{i:03d}"
        backend_store.save(
            application, name, pipeline(name, docker(f"{application}/other-{i}"), application=application)
        )
    # A heavy pipeline (thousands of stages) watching another repository costs deliveries nothing.
    heavy = pipeline("heavy", docker(f"{application}/heavy"), application=application, stages=3000)
    backend_store.save(application, "heavy", heavy)
    backend_store.save(application, "match", pipeline("match", docker(f"{application}/app"), application=application))

    parsed: list[str] = []
    real_parse = core.triggers.parse_pipeline

    def counting_parse(data: Any) -> PipelineSpec:
        parsed.append(str(data.get("name")))
        return real_parse(data)

    monkeypatch.setattr(core.triggers, "parse_pipeline", counting_parse)
    settings = GennakerSettings(temporal_address=temporal_server.address, task_queue=f"idx-{uuid.uuid4().hex}")
    result = await dispatch_registry_push(
        client,
        settings,
        backend_store.aio,
        account="local",
        repository=f"{application}/app",
        tag="v1",
        digest=None,
        delivery_id=uuid.uuid4().hex,
    )
    assert parsed == ["match"]
    assert [(s.application, s.pipeline) for s in result.started] == [(application, "match")]
    await client.get_workflow_handle(result.started[0].id).terminate("test done")


def test_the_token_cache_is_bounded_and_short_lived() -> None:
    now = [0.0]
    cache = TokenCache(max_entries=2, ttl_seconds=10, clock=lambda: now[0])
    infos = {}
    for digest in ("a", "b", "c"):
        infos[digest] = object()
        cache.put(digest, infos[digest])  # type: ignore[arg-type]
    assert cache.get("a") is None and cache.get("b") is infos["b"] and len(cache) == 2
    now[0] = 10.0
    assert cache.get("b") is None and cache.get("c") is None


async def test_a_revoked_token_stops_working_within_the_cache_ttl(database_url: str) -> None:
    now = [0.0]
    tokens = TokenStore(database_url)
    lookup = AsyncTokenLookup(tokens, TokenCache(ttl_seconds=10, clock=lambda: now[0]))
    try:
        token, info = tokens.create("alice", ["devs"], "test")
        assert await lookup.lookup("gnk_unknown") is None
        assert (await lookup.lookup(token)) == info
        assert tokens.revoke(info.id)
        now[0] = 9.9
        assert (await lookup.lookup(token)) == info  # cached: revocation takes up to the TTL
        now[0] = 10.0
        assert await lookup.lookup(token) is None
    finally:
        tokens.close()


def test_gateway_dependencies_run_on_the_event_loop() -> None:
    """Plain `def` dependencies are sent to the thread pool one request at a time."""
    for dependency in (
        api.auth.authenticate,
        api.auth.policy_of,
        api.deps._client,
        api.deps._store,
        api.deps._settings,
        api.deps._access,
        api.deps._caller,
    ):
        assert inspect.iscoroutinefunction(dependency), dependency.__name__
