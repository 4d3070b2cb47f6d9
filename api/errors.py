"""One place that turns domain and Temporal errors into JSON responses: {"error": {code, message, field?}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ServiceError
from workflows.model import FieldError, PipelineInvalid

log = logging.getLogger("gennaker.api")

# Update validators reject with an ApplicationError whose type says what went wrong.
UPDATE_REJECTION_STATUS = {
    "UnknownStage": 404,
    "NotWaiting": 409,
    "NotRunning": 409,
    "UnknownOption": 422,
    "NotJudgment": 422,
    "Forbidden": 403,
}


class ApiError(ServiceError):
    """A refusal decided by the gateway itself (authentication, request shape)."""


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_body(
    code: str, message: str, field: str | None = None, errors: list[FieldError] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    return {"error": body}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(PipelineInvalid)
    async def _invalid_pipeline(_: Request, exc: PipelineInvalid) -> JSONResponse:
        first = exc.errors[0] if exc.errors else None
        return JSONResponse(
            error_body("invalid_pipeline", str(exc), first.field if first else None, exc.errors), status_code=422
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            # A body that is not JSON at all: the location holds the decoder's offset, not a field.
            FieldError(field="body", message=f"{e['msg']} at character {e['loc'][-1]}")
            if e["type"] == "json_invalid"
            else FieldError(field=_location(tuple(e["loc"])), message=e["msg"])
            for e in exc.errors()
        ]
        message = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return JSONResponse(
            error_body("invalid_request", message, errors[0].field if errors else None, errors), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_rejected(_: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            status = UPDATE_REJECTION_STATUS.get(cause.type or "", 409)
            return JSONResponse(error_body(_snake(cause.type or "rejected"), cause.message), status_code=status)
        return JSONResponse(error_body("rejected", str(cause or exc)), status_code=409)

    @app.exception_handler(RPCError)
    async def _temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return JSONResponse(error_body("not_found", f"execution not found: {exc.message}"), status_code=404)
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return JSONResponse(
                error_body("temporal_unavailable", f"Temporal is not reachable: {exc.message}"), status_code=503
            )
        log.warning("Temporal error: %s (%s)", exc.message, exc.status)
        return JSONResponse(error_body("temporal_error", exc.message), status_code=502)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("internal_error", f"internal error ({type(exc).__name__}); see the gateway log"), status_code=500
        )


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
