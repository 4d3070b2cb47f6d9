"""Payload encryption: round trip, key rotation, pass-through of old payloads, wrong keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from temporalio.api.common.v1 import Payload

from core.codec import ENCODING, CodecKeyError, CodecKeys, EncryptionCodec


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_the_plaintext(tmp_path: Path) -> None:
    codec = EncryptionCodec(CodecKeys.write_new(tmp_path / "keys.yaml"))
    [sealed] = await codec.encode([plain('{"password": "hunter2"}')])
    assert sealed.metadata["encoding"] == ENCODING
    assert b"hunter2" not in sealed.data
    [opened] = await codec.decode([sealed])
    assert opened == plain('{"password": "hunter2"}')


async def test_rotation_keeps_old_payloads_readable(tmp_path: Path) -> None:
    old = CodecKeys.write_new(tmp_path / "old.yaml", key_id="k1")
    [sealed_with_k1] = await EncryptionCodec(old).encode([plain("before rotation")])
    rotated_file = tmp_path / "rotated.yaml"
    rotated_file.write_text(
        yaml.safe_dump(
            {
                "current": "k2",
                "keys": {"k1": base64.b64encode(old.keys["k1"]).decode(), "k2": base64.b64encode(b"x" * 32).decode()},
            }
        )
    )
    rotated = EncryptionCodec(CodecKeys.load(rotated_file))
    [sealed_with_k2] = await rotated.encode([plain("after rotation")])
    assert sealed_with_k2.metadata["encryption-key-id"] == b"k2"
    assert [p.data for p in await rotated.decode([sealed_with_k1, sealed_with_k2])] == [
        b"before rotation",
        b"after rotation",
    ]


async def test_unencrypted_payloads_pass_through(tmp_path: Path) -> None:
    codec = EncryptionCodec(CodecKeys.write_new(tmp_path / "keys.yaml"))
    assert await codec.decode([plain("recorded before encryption")]) == [plain("recorded before encryption")]


async def test_a_payload_from_an_unknown_key_is_refused(tmp_path: Path) -> None:
    [sealed] = await EncryptionCodec(CodecKeys.write_new(tmp_path / "a.yaml", key_id="a")).encode([plain("x")])
    other = EncryptionCodec(CodecKeys.write_new(tmp_path / "b.yaml", key_id="b"))
    with pytest.raises(CodecKeyError, match="key 'a'"):
        await other.decode([sealed])


def test_bad_key_files_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"current": "k1", "keys": {"k1": base64.b64encode(b"short").decode()}}))
    with pytest.raises(CodecKeyError, match="must be 32 bytes"):
        CodecKeys.load(path)
    path.write_text(yaml.safe_dump({"current": "k9", "keys": {"k1": base64.b64encode(b"y" * 32).decode()}}))
    with pytest.raises(CodecKeyError, match="current key 'k9'"):
        CodecKeys.load(path)


async def test_same_key_id_with_other_key_material_says_so(tmp_path: Path) -> None:
    [sealed] = await EncryptionCodec(CodecKeys.write_new(tmp_path / "a.yaml", key_id="k1")).encode([plain("x")])
    impostor = EncryptionCodec(CodecKeys.write_new(tmp_path / "b.yaml", key_id="k1"))
    with pytest.raises(CodecKeyError, match="different key material"):
        await impostor.decode([sealed])
