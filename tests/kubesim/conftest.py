"""One kubesim per test session, reached only through the official `kubernetes` client over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import RunningKubesim, start_kubesim
from tests.kubesim.util import READY_DELAY


@pytest.fixture(scope="session")
def kubesim() -> Iterator[RunningKubesim]:
    sim = start_kubesim(ready_delay=READY_DELAY, seed=7)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def api_client(kubesim: RunningKubesim) -> Any:
    return kubesim.new_client()


@pytest.fixture(scope="session")
def core(api_client: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: Any) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def batch(api_client: Any) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api, kubesim: RunningKubesim) -> Iterator[str]:
    """A fresh namespace per test, so tests never see each other's objects; faults are reset after."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    kubesim.reset_faults()
    core.delete_namespace(name)
