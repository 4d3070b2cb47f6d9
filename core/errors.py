"""Errors the core services raise for callers to answer: the gateway turns them into HTTP responses
(api/errors.py), other callers (trigger activities, the CLI) into their own reports."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses, with what people need to fix it.

    `status` uses HTTP's numbers because they are the vocabulary every caller already speaks
    (404 unknown, 409 conflicting state, 422 invalid input); nothing here depends on HTTP.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers: dict[str, str] | None = None


def not_found(what: str) -> ServiceError:
    return ServiceError(404, "not_found", f"{what} not found")
