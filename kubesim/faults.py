"""Faults that tests switch on at run time through the admin endpoint.

A fault only ever changes how the API answers, never the stored state, so a test can check that the
code under test retries, re-watches or reports correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ForbidRule:
    """Answer 403 for matching requests; empty fields match anything."""

    verb: str = ""
    resource: str = ""
    namespace: str = ""

    def matches(self, verb: str, resource: str, namespace: str) -> bool:
        return (
            (not self.verb or self.verb == verb)
            and (not self.resource or self.resource == resource)
            and (not self.namespace or self.namespace == namespace)
        )


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_count: int = 0  # the next N API requests fail with error_code
    error_code: int = 503
    token_revoked: bool = False
    forbid: list[ForbidRule] = field(default_factory=list)
    errors_served: int = 0

    def take_error(self) -> int | None:
        """Consume one injected error, if a burst is under way."""
        if self.error_count <= 0:
            return None
        self.error_count -= 1
        self.errors_served += 1
        return self.error_code

    def forbidden(self, verb: str, resource: str, namespace: str) -> bool:
        return any(rule.matches(verb, resource, namespace) for rule in self.forbid)

    def update(self, body: Obj) -> None:
        """Apply a partial update; keys: latency_ms, error_burst {count, code}, revoke_token, forbid."""
        if "latency_ms" in body:
            self.latency_ms = float(body["latency_ms"])
        if "error_burst" in body:
            burst = body["error_burst"] or {}
            self.error_count = int(burst.get("count", 0))
            self.error_code = int(burst.get("code", 503))
        if "revoke_token" in body:
            self.token_revoked = bool(body["revoke_token"])
        if "forbid" in body:
            self.forbid = [
                ForbidRule(r.get("verb", ""), r.get("resource", ""), r.get("namespace", ""))
                for r in body["forbid"] or []
            ]

    def reset(self) -> None:
        self.latency_ms = 0.0
        self.error_count = 0
        self.error_code = 503
        self.token_revoked = False
        self.forbid = []

    def describe(self) -> Obj:
        return {
            "latency_ms": self.latency_ms,
            "error_burst": {"count": self.error_count, "code": self.error_code},
            "errors_served": self.errors_served,
            "revoke_token": self.token_revoked,
            "forbid": [{"verb": r.verb, "resource": r.resource, "namespace": r.namespace} for r in self.forbid],
        }


def injected_error_reason(code: int) -> tuple[str, str]:
    """Reason and message a real server would use for this 5xx (StatusReason constants in meta/v1)."""
    if code == 503:
        return "ServiceUnavailable", "kubesim: injected fault: the server is currently unable to handle the request"
    if code == 504:
        return "Timeout", "kubesim: injected fault: the server was unable to return a response in the time allotted"
    return "InternalError", "kubesim: injected fault: an error on the server has prevented the request from succeeding"
