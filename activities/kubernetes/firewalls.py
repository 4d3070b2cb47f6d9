"""Security groups: NetworkPolicies that admit ingress from CIDRs on protocol/port ranges.

A security group named `web` is the NetworkPolicy `web`, selecting pods labelled
`security-group.gennaker.io/web: "true"`; a deploy whose `securityGroups` lists `web` puts that
label on its pod template. Upserting is create-or-replace, so a retry is harmless.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field, model_validator
from temporalio import activity

from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroups import MANAGED_BY_LABEL, api, security_group_label


class IngressRule(BaseModel):
    cidr: str = Field(default="0.0.0.0/0", description="Source address range")
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    startPort: int = Field(ge=1, le=65535)
    endPort: int | None = Field(default=None, ge=1, le=65535, description="Inclusive; default startPort")

    @model_validator(mode="after")
    def _ordered(self) -> IngressRule:
        if self.endPort is not None and self.endPort < self.startPort:
            raise ValueError(f"endPort {self.endPort} is below startPort {self.startPort}")
        return self


class SecurityGroupSpec(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    namespace: str
    description: str | None = None
    ingress: list[IngressRule] = Field(default_factory=list, description="Empty: admit nothing")


class SecurityGroupResult(BaseModel):
    name: str
    namespace: str
    created: bool
    podLabel: str


def network_policy(spec: SecurityGroupSpec) -> dict[str, object]:
    rules = []
    for rule in spec.ingress:
        port: dict[str, object] = {"protocol": rule.protocol, "port": rule.startPort}
        if rule.endPort is not None and rule.endPort != rule.startPort:
            port["endPort"] = rule.endPort
        rules.append({"from": [{"ipBlock": {"cidr": rule.cidr}}], "ports": [port]})
    annotations = {"gennaker.io/description": spec.description} if spec.description else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": spec.name, "labels": {MANAGED_BY_LABEL: "gennaker"}, "annotations": annotations},
        "spec": {
            "podSelector": {"matchLabels": {security_group_label(spec.name): "true"}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


class FirewallActivities:
    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    @activity.defn(name="upsertSecurityGroup")
    def upsert_security_group(self, spec: SecurityGroupSpec) -> SecurityGroupResult:
        client = self.client
        client.check_namespace(spec.namespace)
        body = network_policy(spec)
        label = security_group_label(spec.name)
        try:
            client.networking.create_namespaced_network_policy(spec.namespace, cast(Any, body))
            return SecurityGroupResult(name=spec.name, namespace=spec.namespace, created=True, podLabel=label)
        except ApiException as exc:
            if exc.status != 409:
                raise client.translate(exc, f"create NetworkPolicy {spec.name}") from None
        current = api(
            client,
            client.networking.read_namespaced_network_policy,
            spec.name,
            spec.namespace,
            what=f"read NetworkPolicy {spec.name}",
        )
        version = current.metadata.resource_version
        body["metadata"] = {**cast(dict[str, Any], body["metadata"]), "resourceVersion": version}
        api(
            client,
            client.networking.replace_namespaced_network_policy,
            spec.name,
            spec.namespace,
            body,
            what=f"replace NetworkPolicy {spec.name}",
        )
        return SecurityGroupResult(name=spec.name, namespace=spec.namespace, created=False, podLabel=label)
