"""Connecting to Temporal the one way everything here does: pydantic payloads, encrypted when a
codec key file is configured (see api/codec.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from api.codec import codec_from_file


def data_converter(codec_keys_file: Path | None = None) -> DataConverter:
    """Without an explicit file, GENNAKER_CODEC_KEYS_FILE decides, so every part of one deployment
    (gateway, workers, CLI tools, tests) encrypts the same way."""
    if codec_keys_file is None and os.environ.get("GENNAKER_CODEC_KEYS_FILE"):
        codec_keys_file = Path(os.environ["GENNAKER_CODEC_KEYS_FILE"])
    codec = codec_from_file(codec_keys_file)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(
    address: str, namespace: str = "default", codec_keys_file: Path | None = None, wait_seconds: float = 30.0
) -> Client:
    """Connect, waiting up to `wait_seconds` for a server that is starting ("not healthy yet")."""
    converter = data_converter(codec_keys_file)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            return await Client.connect(address, namespace=namespace, data_converter=converter)
        except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
            if loop.time() > deadline:
                raise RuntimeError(f"cannot connect to Temporal at {address}: {exc}") from None
            await asyncio.sleep(0.2)
