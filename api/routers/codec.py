"""The remote codec endpoint the Temporal Web UI calls to show encrypted payloads.

Temporal's codec-server protocol: POST {"payloads": [<Payload as protobuf JSON>]} to /codec/encode or
/codec/decode, answered in the same shape. Point the UI at it with "Data Encoder" settings
(`http://<gateway>/codec`), or `TEMPORAL_CODEC_ENDPOINT` for a self-hosted UI.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import Access, AccessDep
from api.errors import ApiError
from api.policy import Permission
from api.settings import GatewaySettings
from core.codec import CodecKeyError, EncryptionCodec, codec_from_file

router = APIRouter(prefix="/codec", tags=["codec"])


def install_cors(app: FastAPI, settings: GatewaySettings) -> None:
    ui = urlsplit(settings.temporal_ui_url)
    origins = settings.codec_cors_origins or [f"{ui.scheme}://{ui.netloc}"]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["content-type", "authorization", "x-namespace"],
    )


def _codec(request: Request) -> EncryptionCodec:
    settings: GatewaySettings = request.app.state.settings
    codec = getattr(request.app.state, "codec", None)
    if codec is None:
        codec = codec_from_file(settings.codec_keys_file)
        if codec is None:
            raise ApiError(404, "codec_disabled", "payload encryption is not configured on this gateway")
        request.app.state.codec = codec
    return codec


def _may_use_codec(access: Access) -> None:
    # A payload does not say which application it belongs to, so reading payloads needs READ on
    # every application ("*" in the policy) or admin.
    access.require("*", Permission.READ)


async def _payloads(request: Request) -> Payloads:
    """The request's payloads; its size is bounded by the BodyLimit middleware (codec_max_body_bytes)."""
    settings: GatewaySettings = request.app.state.settings
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_payloads", f'expected {{"payloads": [...]}}: {exc}', "payloads") from None
    if len(payloads.payloads) > settings.codec_max_payloads:
        raise ApiError(
            422,
            "too_many_payloads",
            f"{len(payloads.payloads)} payloads; the limit is {settings.codec_max_payloads} per request "
            "(codec_max_payloads)",
            "payloads",
        )
    return payloads


@router.post("/encode", summary="Encrypt payloads (Temporal remote codec protocol)")
async def encode(request: Request, access: AccessDep) -> dict[str, Any]:
    _may_use_codec(access)
    payloads = await _payloads(request)
    encoded = await _codec(request).encode(list(payloads.payloads))
    return json_format.MessageToDict(Payloads(payloads=encoded))


@router.post("/decode", summary="Decrypt payloads for the Temporal UI (Temporal remote codec protocol)")
async def decode(request: Request, access: AccessDep) -> dict[str, Any]:
    _may_use_codec(access)
    payloads = await _payloads(request)
    try:
        decoded = await _codec(request).decode(list(payloads.payloads))
    except CodecKeyError as exc:
        raise ApiError(422, "unknown_key", str(exc)) from None
    return json_format.MessageToDict(Payloads(payloads=decoded))
