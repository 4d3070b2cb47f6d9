"""The remote codec endpoint the Temporal Web UI calls to show encrypted payloads.

Temporal's codec-server protocol: POST {"payloads": [<Payload as protobuf JSON>]} to /codec/encode or
/codec/decode, answered in the same shape. Point the UI at it with "Data Encoder" settings
(`http://<gateway>/codec`), or `TEMPORAL_CODEC_ENDPOINT` for a self-hosted UI.

Who may call it (docs/temporal-ui.md):
- `/codec/…` authenticates like the API: a Temporal UI with OIDC sign-in and "pass access token"
  sends its access token as `Authorization: Bearer`, checked as any OIDC JWT (issuer, audience).
- `/codec/dev/<key>/…` exists only when `gennaker dev` set a per-run key on the app (never from
  configuration): the dev UI, which has no sign-in, is started with this URL as its codec endpoint.
Browsers reach both only from the UI's origin (CORS, `install_cors`).
"""

from __future__ import annotations

import secrets
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
# Included without the API's authentication: the key in the path is the credential.
dev_router = APIRouter(prefix="/codec/dev/{key}", tags=["codec"], include_in_schema=False)


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


def _dev_key_matches(request: Request, key: str) -> None:
    expected: str | None = getattr(request.app.state, "codec_path_key", None)
    if not expected or not secrets.compare_digest(key.encode(), expected.encode()):
        raise ApiError(404, "not_found", "no such codec endpoint")


@dev_router.post("/encode")
async def dev_encode(request: Request, key: str) -> dict[str, Any]:
    _dev_key_matches(request, key)
    payloads = await _payloads(request)
    encoded = await _codec(request).encode(list(payloads.payloads))
    return json_format.MessageToDict(Payloads(payloads=encoded))


@dev_router.post("/decode")
async def dev_decode(request: Request, key: str) -> dict[str, Any]:
    _dev_key_matches(request, key)
    payloads = await _payloads(request)
    try:
        decoded = await _codec(request).decode(list(payloads.payloads))
    except CodecKeyError as exc:
        raise ApiError(422, "unknown_key", str(exc)) from None
    return json_format.MessageToDict(Payloads(payloads=decoded))
