"""Connecting to Temporal the one way everything here does.

Where: Temporal's standard client configuration (`temporalio.envconfig`): a TOML profile
(TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml; profile TEMPORAL_PROFILE or
GENNAKER_TEMPORAL_PROFILE) and the TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY /
TEMPORAL_TLS_* variables, so Temporal Cloud (API key or mTLS) and self-hosted mTLS clusters need no
Gennaker-specific setting (docs/deploy.md). GENNAKER_TEMPORAL_ADDRESS / _NAMESPACE override the
profile. How: pydantic payloads, encrypted when a codec key file is configured (core/codec.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig

from core.codec import GennakerPayloadConverter, codec_from_file
from core.settings import GennakerSettings

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


def data_converter(codec_keys_file: Path | None = None) -> DataConverter:
    """Without an explicit file, GENNAKER_CODEC_KEYS_FILE decides, so every part of one deployment
    (gateway, workers, CLI tools, tests) encrypts the same way."""
    if codec_keys_file is None and os.environ.get("GENNAKER_CODEC_KEYS_FILE"):
        codec_keys_file = Path(os.environ["GENNAKER_CODEC_KEYS_FILE"])
    codec = codec_from_file(codec_keys_file)
    if codec is None:
        return pydantic_data_converter
    # With encryption on, text for people stays readable in the Temporal UI (core/codec.py).
    # Failure messages and stack traces are not payloads: without the failure converter they sit in
    # history in plaintext (a failed webhook's URL, an expression's error). The SDK's encoded-attributes
    # failure converter moves them into `encoded_attributes`, a payload, which the codec then encrypts
    # (temporalio.converter.DefaultFailureConverterWithEncodedAttributes; "Failure Converter" in
    # Temporal's data-conversion docs). Client and workers must agree, so both use this function.
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=GennakerPayloadConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


@dataclass(frozen=True)
class TemporalTarget:
    """Where and how to connect: what Client.connect takes, minus the data converter."""

    address: str
    namespace: str
    options: dict[str, Any]  # tls, api_key, rpc_metadata from the profile

    @property
    def uses_tls(self) -> bool:
        return bool(self.options.get("tls"))


def temporal_target(
    profile: str | None = None, address: str | None = None, namespace: str | None = None
) -> TemporalTarget:
    """The profile (file + TEMPORAL_* env) with our explicit address/namespace on top."""
    loaded: ClientConnectConfig = ClientConfigProfile.load(profile=profile).to_client_connect_config()
    options: dict[str, Any] = {k: v for k, v in loaded.items() if k not in ("target_host", "namespace")}
    return TemporalTarget(
        address=address or loaded.get("target_host") or DEFAULT_ADDRESS,
        namespace=namespace or loaded.get("namespace") or DEFAULT_NAMESPACE,
        options=options,
    )


def settings_target(settings: GennakerSettings) -> TemporalTarget:
    return temporal_target(settings.temporal_profile, settings.temporal_address, settings.temporal_namespace)


async def connect(
    address: str | None = None,
    namespace: str | None = None,
    codec_keys_file: Path | None = None,
    wait_seconds: float = 30.0,
    *,
    profile: str | None = None,
) -> Client:
    """Connect, waiting up to `wait_seconds` for a server that is starting ("not healthy yet")."""
    target = temporal_target(profile, address, namespace)
    converter = data_converter(codec_keys_file)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            return await Client.connect(
                target.address, namespace=target.namespace, data_converter=converter, **target.options
            )
        except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
            if loop.time() > deadline:
                raise RuntimeError(f"cannot connect to Temporal at {target.address}: {exc}") from None
            await asyncio.sleep(0.2)


async def connect_with(settings: GennakerSettings, wait_seconds: float = 30.0) -> Client:
    """Connect as the settings say (profile, overrides, codec keys)."""
    return await connect(
        settings.temporal_address,
        settings.temporal_namespace,
        settings.codec_keys_file,
        wait_seconds,
        profile=settings.temporal_profile,
    )
