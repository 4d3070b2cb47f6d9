"""Connecting to Temporal the one way everything here does: with the pydantic data converter."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(address: str, namespace: str = "default", wait_seconds: float = 30.0) -> Client:
    """Connect, waiting up to `wait_seconds` for a server that is starting ("not healthy yet")."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
        except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
            if loop.time() > deadline:
                raise RuntimeError(f"cannot connect to Temporal at {address}: {exc}") from None
            await asyncio.sleep(0.2)
