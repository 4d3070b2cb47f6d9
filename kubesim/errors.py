"""Failures as the API server reports them: `Status` objects with an HTTP code.

Shapes follow `Status`, `StatusDetails`, `StatusCause` and the `StatusReason` constants in
kubernetes/kubernetes `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`; the messages follow
the constructors in `staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go` (`NewNotFound`,
`NewAlreadyExists`, `NewConflict`, `NewInvalid`, `NewForbidden`, `NewResourceExpired`). Note that real
servers put the *resource* (plural, e.g. "pods") in `details.kind`, not the Kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Cause:
    """One entry of `details.causes`: which field was wrong and why."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueForbidden
    message: str
    field: str


class ApiError(Exception):
    """An error that the HTTP layer turns into a `Status` body with `code` as the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: list[Cause] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes or []

    def status(self) -> Obj:
        details: Obj = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes]
        return failure_status(self.code, self.reason, self.message, details or None)


def failure_status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    status: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return status


def success_status(details: Obj) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', name=name, group=group, kind=resource
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        name=name,
        group=group,
        kind=resource,
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, name=name, group=group, kind=resource)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid; `kind` here is the Kind (errors.NewInvalid takes a GroupKind)."""
    parts = [f"{c.field}: {c.message}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', name=name, group=group, kind=kind, causes=causes
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(verb: str, resource: str, group: str, namespace: str, user: str) -> ApiError:
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{_qualified(resource, group)} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}"{where}'
    )
    return ApiError(403, "Forbidden", message, group=group, kind=resource)


def denied(resource: str, group: str, name: str, why: str) -> ApiError:
    """403 for one object, as admission refuses it (a quota, a policy webhook): errors.NewForbidden with a
    name, so the message is `<resource>.<group> "<name>" is forbidden: <why>`."""
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", name=name, group=group, kind=resource)


def expired(requested: int, oldest: int) -> ApiError:
    # The watch cache answers an expired resourceVersion with reason Expired (errors.NewResourceExpired)
    # and code 410; kubernetes-client/python `kubernetes/base/watch/watch.py` keys its one automatic
    # retry on `code == 410` in the ERROR event.
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")
