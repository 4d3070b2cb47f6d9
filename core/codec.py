"""Payload encryption: every payload Gennaker writes to Temporal is AES-256-GCM encrypted.

Keys have ids; the current id encrypts, every configured id decrypts, so rotation is: add a key,
make it current, keep the old one until histories that use it are gone. Payloads without our
encoding (histories from before encryption was switched on) pass through untouched. People with
rights read payloads in the Temporal UI through the gateway's codec endpoint (/codec/decode).

Key file (GENNAKER_CODEC_KEYS_FILE), YAML:  {current: k2, keys: {k1: <base64 32 bytes>, k2: ...}}

What stays in clear, on purpose: text written for people in the Temporal UI. The SDK runs the codec
over every payload of a command, user metadata included (temporalio `bridge/_visitor.py` visits
`UserMetadata.summary`/`.details`), and over the `__temporal_workflow_metadata` query answer that
carries the current details. Encrypted, the UI shows them as blobs unless a codec endpoint is set.
So a summary built as `ReadableText` (stage names, types, accounts, object names; never parameters,
trigger payloads or credentials) and the workflow-metadata answer are marked by the payload converter
(`READABLE` in the payload's metadata) and `EncryptionCodec.encode` leaves marked payloads alone.
Inputs, results, signals, queries, failures' details and every unmarked payload stay encrypted.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import EncodingPayloadConverter, JSONProtoPayloadConverter, PayloadCodec

from workflows.readable import ReadableText

__all__ = ["READABLE", "EncryptionCodec", "GennakerPayloadConverter", "ReadableText", "codec_from_file"]

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
READABLE = "gennaker-readable"


def is_readable(value: object) -> bool:
    return bool(getattr(type(value), "gennaker_readable", False)) or isinstance(value, WorkflowMetadata)


class ReadableTextConverter(EncodingPayloadConverter):
    """Encodes marked text (and the UI's workflow-metadata answer) as usual JSON, plus the mark.
    Its own encoding name is never written, so decoding stays with the standard converters."""

    _proto = JSONProtoPayloadConverter()

    @property
    def encoding(self) -> str:
        return "gennaker/readable-mark"

    def to_payload(self, value: Any) -> Payload | None:
        if isinstance(value, WorkflowMetadata):
            payload = self._proto.to_payload(value)
        elif is_readable(value):
            payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(str(value)).encode())
        else:
            return None
        if payload is not None:
            payload.metadata[READABLE] = b"1"
        return payload

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise RuntimeError("readable payloads are decoded by their json/plain or json/protobuf converter")


class GennakerPayloadConverter(PydanticPayloadConverter):
    """The pydantic converter with `ReadableTextConverter` tried first."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(ReadableTextConverter(), *self.converters.values())


class CodecKeyError(ValueError):
    pass


@dataclass(frozen=True)
class CodecKeys:
    current: str
    keys: dict[str, bytes]

    @classmethod
    def load(cls, path: Path) -> CodecKeys:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CodecKeyError(f"codec keys {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict) or "current" not in data:
            raise CodecKeyError(f"codec keys {path}: expected {{current: <id>, keys: {{<id>: <base64>}}}}")
        keys = {}
        for key_id, encoded in data["keys"].items():
            try:
                raw = base64.b64decode(str(encoded), validate=True)
            except ValueError:
                raise CodecKeyError(f"codec keys {path}: key {key_id} is not base64") from None
            if len(raw) != 32:
                raise CodecKeyError(f"codec keys {path}: key {key_id} must be 32 bytes (AES-256), got {len(raw)}")
            keys[str(key_id)] = raw
        current = str(data["current"])
        if current not in keys:
            raise CodecKeyError(f"codec keys {path}: current key {current!r} is not among the keys")
        return cls(current=current, keys=keys)

    @staticmethod
    def write_new(path: Path, key_id: str = "k1") -> CodecKeys:
        """Create a key file with one fresh key (the dev stack does this once per data dir)."""
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"current": key_id, "keys": {key_id: base64.b64encode(key).decode()}}))
        os.chmod(path, 0o600)
        return CodecKeys(current=key_id, keys={key_id: key})


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: CodecKeys) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._keys.current
        cipher = self._ciphers[key_id]
        out = []
        for payload in payloads:
            if payload.metadata.get(READABLE) == b"1":
                out.append(payload)  # text for people, see the module docstring
                continue
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise CodecKeyError(f"payload encrypted with key {key_id!r}, which this process does not have")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                opened = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag:
                raise CodecKeyError(
                    f"payload could not be decrypted with key {key_id!r}: this process has different key "
                    "material under that id (check GENNAKER_CODEC_KEYS_FILE on every gateway and worker)"
                ) from None
            out.append(Payload.FromString(opened))
        return out


def codec_from_file(path: Path | None) -> EncryptionCodec | None:
    return EncryptionCodec(CodecKeys.load(path)) if path is not None else None
