"""Spinnaker's `deploy` stage (Kubernetes provider V1 `clusters`) → Gennaker deploy fields.

Each entry of `clusters` becomes one Gennaker deploy stage (convert.py runs them in parallel): a
server group that is a ReplicaSet `<cluster>-v<NNN>`. Container fields follow the V1 provider's
shape (`imageDescription`, `envVars`, `requests`/`limits`, probes with `handler.type`
HTTP/TCP/EXEC) as Deck wrote them.
"""

from __future__ import annotations

from typing import Any

from core.spinnaker.fields import Fields, boolean, is_empty, number


def _image(description: dict[str, Any], f: Fields, where: str) -> str | None:
    if description.get("imageId") and "${" not in str(description.get("imageId")):
        return str(description["imageId"])
    registry = description.get("registry")
    repository = description.get("repository")
    if description.get("fromTrigger") and repository:
        prefix = f"{registry}/" if registry else ""
        f.ctx.report.mapped(where, "image from the docker trigger → trigger.payload.tag")
        return f"{prefix}{repository}:${{{{ trigger.payload.tag }}}}"
    if description.get("fromContext") and description.get("stageId"):
        ref = f.ctx.scope.ref_ids.get(str(description["stageId"]), str(description["stageId"]))
        f.ctx.report.mapped(where, f"image from stage {ref} → its outputs.image")
        return f'${{{{ stages["{ref}"].outputs.image }}}}'
    if repository and description.get("tag"):
        prefix = f"{registry}/" if registry else ""
        return str(f.ctx.templates.text(f"{prefix}{repository}:{description['tag']}", where))
    if description.get("imageId"):
        return str(f.ctx.templates.text(str(description["imageId"]), where))
    f.ctx.report.untranslated(where, "image description without imageId, repository+tag, fromTrigger or fromContext")
    return None


def _probe(probe: dict[str, Any], f: Fields, where: str) -> dict[str, Any] | None:
    handler = probe.get("handler") or {}
    kind = str(handler.get("type", "")).upper()
    out: dict[str, Any] = {}
    if kind == "HTTP":
        action = handler.get("httpGetAction") or {}
        out["httpGet"] = {
            "path": action.get("path") or "/",
            "port": number(action.get("port")),
            "scheme": str(action.get("uriScheme") or "HTTP").upper(),
        }
    elif kind == "TCP":
        out["tcpSocket"] = {"port": number((handler.get("tcpSocketAction") or {}).get("port"))}
    elif kind == "EXEC":
        out["exec"] = {"command": list((handler.get("execAction") or {}).get("commands") or [])}
    else:
        f.ctx.report.untranslated(where, f"probe handler type {kind!r} is not HTTP, TCP or EXEC")
        return None
    for key in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"):
        value = number(probe.get(key))
        if isinstance(value, int) and value > 0:
            out[key] = value
    return out


def _container(raw: dict[str, Any], f: Fields, where: str) -> dict[str, Any] | None:
    out: dict[str, Any] = {"name": raw.get("name") or "main"}
    image = _image(raw.get("imageDescription") or {}, f, f"{where}.imageDescription")
    if image is None:
        return None
    out["image"] = image
    ports = [
        {
            k: v
            for k, v in {
                "containerPort": number(p.get("containerPort")),
                "name": p.get("name") or None,
                "protocol": p.get("protocol") or "TCP",
            }.items()
            if v is not None
        }
        for p in raw.get("ports") or []
    ]
    if ports:
        out["ports"] = ports
    env: dict[str, str] = {}
    for i, var in enumerate(raw.get("envVars") or []):
        if var.get("envSource"):
            f.ctx.report.untranslated(f"{where}.envVars[{i}]", "env from a secret/config map: use a deploy manifest")
            return None
        env[str(var.get("name"))] = str(f.ctx.templates.text(str(var.get("value", "")), f"{where}.envVars[{i}]"))
    if env:
        out["env"] = env
    for key in ("command", "args"):
        if raw.get(key):
            out[key] = list(raw[key])
    resources = {
        kind: {k: str(v) for k, v in (raw.get(kind) or {}).items() if v not in (None, "")}
        for kind in ("requests", "limits")
    }
    if any(resources.values()):
        out["resources"] = {k: v for k, v in resources.items() if v}
    for key in ("readinessProbe", "livenessProbe"):
        if raw.get(key):
            probe = _probe(raw[key], f, f"{where}.{key}")
            if probe is None:
                return None
            out[key] = probe
    for key in ("volumeMounts", "envFrom", "securityContext", "lifecycle"):
        if raw.get(key):
            f.ctx.report.untranslated(f"{where}.{key}", f"container {key}: use a deploy manifest")
            return None
    return out


_STRATEGIES = {"": "none", "none": "none", "highlander": "highlander", "redblack": "redblack",
               "rollingredblack": "rollingRedBlack"}  # fmt: skip
_CLUSTER_KEYS = {"account", "credentials", "application", "stack", "freeFormDetails", "namespace", "region",
                 "containers", "capacity", "targetSize", "loadBalancers", "securityGroups", "strategy", "scaleDown",
                 "delayBeforeScaleDownSec", "maxRemainingAsgs", "rollback", "targetPercentages", "cloudProvider",
                 "provider"}  # fmt: skip
_CLUSTER_NOISE = {
    "interestingHealthProviderNames", "events", "dnsPolicy", "moniker", "useSourceCapacity",
    "availabilityZones", "delayBeforeDisableSec", "restrictedExecutionWindow",
}  # fmt: skip


def deploy_cluster(cluster: dict[str, Any], f: Fields, where: str) -> dict[str, Any] | None:
    """One Spinnaker deploy `clusters[i]` → the Gennaker deploy fields, or None (reported)."""
    ctx = f.ctx
    provider = cluster.get("cloudProvider") or cluster.get("provider") or "kubernetes"
    if provider != "kubernetes":
        ctx.report.untranslated(where, f"cloud provider {provider!r}: Gennaker deploys to Kubernetes server groups")
        return None
    out: dict[str, Any] = {
        "account": ctx.account(cluster.get("account") or cluster.get("credentials"), f"{where}.account")
    }
    namespace = cluster.get("namespace") or cluster.get("region")
    if namespace:
        out["namespace"] = ctx.namespace(namespace, f"{where}.namespace")
    application = cluster.get("application")
    if application and application != ctx.application:
        out["application"] = application
    for key in ("stack", "freeFormDetails"):
        if cluster.get(key):
            out[key] = cluster[key]
    containers = cluster.get("containers") or []
    if len(containers) != 1:
        ctx.report.untranslated(
            f"{where}.containers",
            f"{len(containers)} containers: Gennaker's deploy takes one (use a ReplicaSet `manifest`)",
        )
        return None
    container = _container(containers[0], f, f"{where}.containers[0]")
    if container is None:
        return None
    out["container"] = container
    capacity = {k: number(v) for k, v in (cluster.get("capacity") or {}).items() if v not in (None, "")}
    if not capacity and cluster.get("targetSize") is not None:
        size = number(cluster["targetSize"])
        capacity = {"min": size, "max": size, "desired": size}
    if capacity:
        out["capacity"] = capacity
    for key in ("loadBalancers", "securityGroups"):
        if cluster.get(key):
            out[key] = list(cluster[key])
    strategy = str(cluster.get("strategy") or "").lower()
    if strategy not in _STRATEGIES:
        ctx.report.untranslated(
            f"{where}.strategy", f"strategy {strategy!r} (Gennaker: none, highlander, redblack, rollingRedBlack)"
        )
        return None
    out["strategy"] = _STRATEGIES[strategy]
    for key in ("scaleDown",):
        if key in cluster:
            out[key] = boolean(cluster[key])
    for key in ("delayBeforeScaleDownSec", "maxRemainingAsgs"):
        if cluster.get(key) not in (None, "", 0):
            out[key] = number(cluster[key])
    if isinstance(cluster.get("rollback"), dict) and "onFailure" in cluster["rollback"]:
        out["rollback"] = {"onFailure": boolean(cluster["rollback"]["onFailure"])}
    if cluster.get("targetPercentages"):
        out["targetPercentages"] = [int(number(p)) for p in cluster["targetPercentages"]]
    for key, value in cluster.items():
        if key in _CLUSTER_KEYS:
            continue
        if key in _CLUSTER_NOISE or is_empty(value) or (key == "dnsPolicy" and value == "ClusterFirst"):
            ctx.report.dropped(f"{where}.{key}", "Kubernetes' default, or bookkeeping of Deck")
        else:
            ctx.report.untranslated(f"{where}.{key}", f"cluster field {key!r} has no Gennaker counterpart")
            return None
    return out
