"""Faults that tests switch on at run time through the admin endpoint.

A fault only ever changes how the API answers, never the stored state, so a test can check that the
code under test retries, re-watches or reports correctly. A refused create stores nothing, as on a
real server, where validation (422) and admission (403, or a webhook's 400) run before storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubesim.errors import ApiError, Cause, bad_request, denied, invalid

Obj = dict[str, Any]

# What a real server answers a create it will not store with: its StatusReason for each code.
REFUSAL_REASONS = {400: "BadRequest", 403: "Forbidden", 422: "Invalid"}
INJECTED_REFUSAL = "refused by kubesim fault injection"


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


@dataclass(frozen=True)
class RefuseCreate:
    """Refuse creates of `resource` (the plural, e.g. "horizontalpodautoscalers"), in `namespace` and of
    `name` when given, with `code`: 422 as validation does, 403 as admission does (a quota, a policy),
    400 as a denying webhook may."""

    resource: str
    namespace: str = ""
    name: str = ""
    code: int = 422
    message: str = INJECTED_REFUSAL
    field: str = "spec"  # the field a 422's cause names

    @classmethod
    def parse(cls, rule: Any) -> RefuseCreate:
        if not isinstance(rule, dict) or not isinstance(rule.get("resource"), str) or not rule["resource"]:
            raise ValueError(f"refuse_create: each rule needs a resource (the plural), got {rule!r}")
        unknown = set(rule) - {"resource", "namespace", "name", "code", "message", "field"}
        if unknown:
            raise ValueError(f"refuse_create: unknown keys {sorted(unknown)}")
        code = int(rule.get("code", 422))
        if code not in REFUSAL_REASONS:
            raise ValueError(f"refuse_create: code must be one of {sorted(REFUSAL_REASONS)}, got {code}")
        return cls(
            resource=rule["resource"],
            namespace=str(rule.get("namespace", "")),
            name=str(rule.get("name", "")),
            code=code,
            message=str(rule.get("message") or INJECTED_REFUSAL),
            field=str(rule.get("field") or "spec"),
        )

    def matches(self, resource: str, namespace: str, name: str) -> bool:
        return (
            self.resource == resource
            and (not self.namespace or self.namespace == namespace)
            and (not self.name or self.name == name)
        )

    def error(self, resource: str, group: str, kind: str, name: str) -> ApiError:
        """The Status a real server sends (errors.NewInvalid with a field.Forbidden cause, errors.NewForbidden,
        errors.NewBadRequest in apimachinery `pkg/api/errors/errors.go`)."""
        if self.code == 422:
            return invalid(kind, group, name, [Cause("FieldValueForbidden", f"Forbidden: {self.message}", self.field)])
        if self.code == 403:
            return denied(resource, group, name, self.message)
        return bad_request(self.message)

    def describe(self) -> Obj:
        return {
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "code": self.code,
            "reason": REFUSAL_REASONS[self.code],
            "message": self.message,
            "field": self.field,
        }


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_count: int = 0  # the next N API requests fail with error_code
    error_code: int = 503
    token_revoked: bool = False
    forbid: list[ForbidRule] = field(default_factory=list)
    refuse_create: list[RefuseCreate] = field(default_factory=list)
    errors_served: int = 0
    refusals_served: int = 0

    def take_error(self) -> int | None:
        """Consume one injected error, if a burst is under way."""
        if self.error_count <= 0:
            return None
        self.error_count -= 1
        self.errors_served += 1
        return self.error_code

    def forbidden(self, verb: str, resource: str, namespace: str) -> bool:
        return any(rule.matches(verb, resource, namespace) for rule in self.forbid)

    def refusal(self, resource: str, namespace: str, name: str) -> RefuseCreate | None:
        """The rule refusing this create, if any (counted as served)."""
        for rule in self.refuse_create:
            if rule.matches(resource, namespace, name):
                self.refusals_served += 1
                return rule
        return None

    def update(self, body: Obj) -> None:
        """Apply a partial update; keys: latency_ms, error_burst {count, code}, revoke_token, forbid,
        refuse_create [{resource, namespace?, name?, code?, message?, field?}]. A bad rule raises
        ValueError before anything changes."""
        rules = body.get("refuse_create") or []
        if not isinstance(rules, list):
            raise ValueError(f"refuse_create: a list of rules, got {rules!r}")
        refusals = [RefuseCreate.parse(r) for r in rules]
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
        if "refuse_create" in body:
            self.refuse_create = refusals

    def reset(self) -> None:
        self.latency_ms = 0.0
        self.error_count = 0
        self.error_code = 503
        self.token_revoked = False
        self.forbid = []
        self.refuse_create = []

    def describe(self) -> Obj:
        return {
            "latency_ms": self.latency_ms,
            "error_burst": {"count": self.error_count, "code": self.error_code},
            "errors_served": self.errors_served,
            "revoke_token": self.token_revoked,
            "forbid": [{"verb": r.verb, "resource": r.resource, "namespace": r.namespace} for r in self.forbid],
            "refuse_create": [r.describe() for r in self.refuse_create],
            "refusals_served": self.refusals_served,
        }


def injected_error_reason(code: int) -> tuple[str, str]:
    """Reason and message a real server would use for this 5xx (StatusReason constants in meta/v1)."""
    if code == 503:
        return "ServiceUnavailable", "kubesim: injected fault: the server is currently unable to handle the request"
    if code == 504:
        return "Timeout", "kubesim: injected fault: the server was unable to return a response in the time allotted"
    return "InternalError", "kubesim: injected fault: an error on the server has prevented the request from succeeding"
