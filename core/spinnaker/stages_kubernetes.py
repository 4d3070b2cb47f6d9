"""Spinnaker's Kubernetes stages → Gennaker's.

- Server group stages (Kubernetes provider V1 shapes: `credentials`, `namespaces`/`regions`,
  `cluster`, `target`): destroy/disable/enable/resize server group, shrink cluster, modify scaling
  process, and `findImage` — which in Spinnaker is *Find Image from Cluster*, so it maps to
  Gennaker's `findImageFromCluster` (Gennaker's `findImage` reads registry tags).
- `deploy`: one Gennaker deploy stage per entry of `clusters` (a ReplicaSet server group).
- Manifest stages (V2 provider): `account`, `location`, `manifestName: "<kind> <name>"` or a
  dynamic target `cluster: "<kind> <name>"` + `criteria`; `runJobManifest` maps to `runJob`.
"""

from __future__ import annotations

from typing import Any

from core.spinnaker.fields import Fields, boolean, is_empty, number
from core.spinnaker.stages import StageMapper

_PROVIDER = "the stage type says Kubernetes"


def _account(f: Fields, out: dict[str, Any]) -> None:
    account = f.take("account") or f.take("credentials")
    f.take("credentials")
    out["account"] = f.ctx.account(account, f.path("account"))


def _kubernetes_only(f: Fields) -> bool:
    provider = f.take("cloudProvider") or f.take("provider") or "kubernetes"
    if provider != "kubernetes":
        f.ctx.report.untranslated(
            f.path("cloudProvider"), f"cloud provider {provider!r}: Gennaker deploys to Kubernetes"
        )
        f.taken.update(f.data)
        return False
    if "cloudProvider" in f.data:
        f.ctx.report.dropped(f.path("cloudProvider"), _PROVIDER)
    return True


def _namespace(f: Fields, out: dict[str, Any], key: str = "namespace") -> bool:
    names = f.take("namespaces") or f.take("regions") or []
    f.take("regions")
    single = f.take("namespace") or f.take("region")
    f.take("region")
    if single and not names:
        names = [single]
    if len(names) > 1:
        f.ctx.report.untranslated(f.path("namespaces"), f"{len(names)} namespaces: a Gennaker stage acts in one")
        return False
    if names:
        out[key] = f.ctx.namespace(names[0], f.path("namespaces"))
    return True


def _server_group_target(f: Fields, out: dict[str, Any]) -> bool:
    _account(f, out)
    ok = _namespace(f, out)
    cluster = f.take("cluster") or f.take("clusterName")
    if cluster:
        out["cluster"] = cluster
    if f.has("serverGroupName"):
        out["serverGroupName"] = f.take("serverGroupName")
    if f.has("target"):
        out["target"] = f.take("target")
    f.drop("moniker", "Gennaker reads the application from the cluster name")
    f.drop("interestingHealthProviderNames", "Gennaker's health is the pods' readiness")
    f.drop("zones", "Kubernetes has no zones per server group", only_if=None)
    return ok


def server_group(type_name: str) -> StageMapper:
    def mapper(f: Fields, out: dict[str, Any]) -> str | None:
        if not _kubernetes_only(f):
            return None
        ok = _server_group_target(f, out)
        if type_name == "resizeServerGroup":
            action = f.take("action") or "scale_exact"
            resize = f.take("resizeType") or ("exact" if action == "scale_exact" else "pct")
            out["resizeType"] = {"pct": "percentage", "incr": "incremental"}.get(resize, resize)
            if action in ("scale_up", "scale_down"):
                out["action"] = action
            if f.has("capacity"):
                out["capacity"] = {k: number(v) for k, v in f.take("capacity").items() if not is_empty(v)}
            for key in ("scalePct", "scaleNum"):
                if f.has(key):
                    out[key] = number(f.take(key))
            f.drop("targetHealthyDeployPercentage", "Gennaker waits for every pod to be ready", only_if=100)
        elif type_name == "shrinkCluster":
            for key in ("shrinkToSize",):
                if key in f.data:
                    out[key] = number(f.take(key))
            for key in ("allowDeleteActive", "retainLargerOverNewer"):
                if key in f.data:
                    out[key] = boolean(f.take(key))
            out.pop("target", None)
        elif type_name == "modifyScalingProcess":
            out["action"] = f.take("action")
            out["processes"] = list(f.take("processes") or [])
        elif type_name == "findImageFromCluster":
            strategy = str(f.take("selectionStrategy") or "NEWEST").upper()
            targets = {"NEWEST": "newest", "OLDEST": "oldest", "LARGEST": "largest"}
            if strategy not in targets:
                f.ctx.report.untranslated(
                    f.path("selectionStrategy"), f"selectionStrategy {strategy}: Gennaker picks one"
                )
                ok = False
            out["target"] = targets.get(strategy, "newest")
            if "onlyEnabled" in f.data:
                out["onlyEnabled"] = boolean(f.take("onlyEnabled"))
            f.drop("imageNamePattern", "any image matches", only_if=".*")
            f.drop("imageNamePattern", "any image matches", only_if=None)
        elif type_name == "disableServerGroup":
            f.drop("remainingEnabledServerGroups", "Gennaker disables only the chosen server group", only_if=1)
            f.drop("preferLargerOverNewer", "off", only_if=False)
        return type_name if ok else None

    return mapper


# ---- deploy (one Gennaker stage per cluster) --------------------------------------------------


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


# ---- manifest stages --------------------------------------------------------------------------


def _manifest_target(f: Fields, out: dict[str, Any]) -> None:
    _account(f, out)
    if f.has("location"):
        out["location"] = f.ctx.namespace(f.take("location"), f.path("location"))
    if f.has("manifestName"):
        out["manifestName"] = f.text("manifestName")
    cluster = f.take("cluster")
    if isinstance(cluster, str) and cluster:
        kind, _, name = cluster.partition(" ")
        if name:
            out["cluster"], out["kind"] = name.strip(), kind
            f.ctx.report.mapped(
                f.path("cluster"), f"dynamic target {cluster!r} → cluster {name.strip()!r}, kind {kind!r}"
            )
        else:
            out["cluster"] = cluster
    if f.has("criteria"):
        out["criteria"] = f.take("criteria")
    if f.has("kind") and "kind" not in out:
        out["kind"] = f.take("kind")
    f.take("kind")
    if f.has("mode"):
        out["mode"] = f.take("mode")
    if f.has("app"):
        out["app"] = f.take("app")
    f.drop("cloudProvider", _PROVIDER, only_if="kubernetes")
    f.drop("manifestArtifactAccount", "manifests are inline (source: text)")
    f.drop("source", "the only source Gennaker reads", only_if="text")
    f.drop("moniker", "Spinnaker's naming hint; names come from the manifests")


def _namespaced(manifest: Any, f: Fields, where: str) -> Any:
    if isinstance(manifest, dict) and isinstance(manifest.get("metadata"), dict):
        namespace = manifest["metadata"].get("namespace")
        if namespace:
            return {**manifest, "metadata": {**manifest["metadata"], "namespace": f.ctx.namespace(namespace, where)}}
    return manifest


def deploy_manifest(f: Fields, out: dict[str, Any]) -> str | None:
    if f.data.get("source", "text") != "text":
        f.ctx.report.untranslated(f.path("source"), "manifests from an artifact: Gennaker deploys inline manifests")
        f.taken.update(f.data)
        return None
    skip = boolean(f.data.get("skipExpressionEvaluation", False))
    _account(f, out)
    manifests = f.take("manifests") or []
    if not skip:
        manifests = f.ctx.templates.value(manifests, f.path("manifests"))
    out["manifests"] = [
        _namespaced(m, f, f.path(f"manifests[{i}].metadata.namespace")) for i, m in enumerate(manifests)
    ]
    if f.has("namespaceOverride"):
        out["namespaceOverride"] = f.ctx.namespace(f.take("namespaceOverride"), f.path("namespaceOverride"))
    if f.has("moniker"):
        out["moniker"] = f.take("moniker")
    if "skipExpressionEvaluation" in f.data:
        out["skipExpressionEvaluation"] = skip
        f.take("skipExpressionEvaluation")
    traffic = f.take("trafficManagement") or {}
    if traffic.get("enabled"):
        f.ctx.report.untranslated(
            f.path("trafficManagement"), "traffic management (Spinnaker's red/black of manifests)"
        )
        return None
    if traffic:
        f.ctx.report.dropped(f.path("trafficManagement"), "not enabled")
    relationships = f.take("relationships") or {}
    if any(relationships.values()):
        f.ctx.report.untranslated(f.path("relationships"), "load balancer/security group relationships")
    elif "relationships" in f.data:
        f.ctx.report.dropped(f.path("relationships"), "empty")
    f.drop("cloudProvider", _PROVIDER, only_if="kubernetes")
    f.drop("manifestArtifactAccount", "manifests are inline (source: text)")
    f.drop("source", "the only source Gennaker reads", only_if="text")
    return "deployManifest"


def targeted(type_name: str) -> StageMapper:
    def mapper(f: Fields, out: dict[str, Any]) -> str:
        _manifest_target(f, out)
        if type_name == "scaleManifest":
            replicas = number(f.take("replicas"))
            out["replicas"] = (
                f.ctx.templates.text(replicas, f.path("replicas")) if isinstance(replicas, str) else replicas
            )
        elif type_name == "patchManifest":
            out["patchBody"] = f.value("patchBody")
            options = f.take("options") or {}
            out["options"] = {k: v for k, v in options.items() if k in ("mergeStrategy", "record")}
        elif type_name == "deleteManifest":
            options = f.take("options") or {}
            if options:
                out["options"] = {
                    k: v for k, v in options.items() if k in ("cascading", "gracePeriodSeconds", "orphanDependants")
                }
            selectors = (f.take("labelSelectors") or {}).get("selectors") or []
            if selectors:
                out["labelSelectors"] = {"selectors": selectors}
            if f.has("kinds"):
                out["kinds"] = f.take("kinds")
        elif type_name == "undoRolloutManifest":
            out["numRevisionsBack"] = number(f.take("numRevisionsBack", 1))
        return type_name

    return mapper


def run_job_manifest(f: Fields, out: dict[str, Any]) -> str | None:
    if f.data.get("source", "text") != "text":
        f.ctx.report.untranslated(f.path("source"), "a Job manifest from an artifact: Gennaker runs inline Jobs")
        f.taken.update(f.data)
        return None
    _account(f, out)
    out["manifest"] = _namespaced(f.value("manifest"), f, f.path("manifest.metadata.namespace"))
    if f.has("application"):
        out["application"] = f.take("application")
    source = f.take("consumeArtifactSource") or "none"
    if source not in ("propertyFile", "none"):
        f.ctx.report.untranslated(f.path("consumeArtifactSource"), f"outputs from {source!r}: only propertyFile")
        return None
    out["consumeArtifactSource"] = source
    if f.has("propertyFile"):
        out["propertyFile"] = f.take("propertyFile")
    f.drop("alias", "Deck's alias of runJob for this stage", only_if="runJob")
    f.drop("cloudProvider", _PROVIDER, only_if="kubernetes")
    f.drop("source", "the only source Gennaker reads", only_if="text")
    f.drop("manifestArtifactAccount", "the Job manifest is inline (source: text)")
    f.ctx.report.mapped(f.where, "runJobManifest → runJob (Gennaker's name until a runJobManifest alias exists)")
    return "runJob"


KUBERNETES_MAPPERS: dict[str, tuple[str, StageMapper]] = {
    "destroyServerGroup": ("destroyServerGroup", server_group("destroyServerGroup")),
    "disableServerGroup": ("disableServerGroup", server_group("disableServerGroup")),
    "enableServerGroup": ("enableServerGroup", server_group("enableServerGroup")),
    "resizeServerGroup": ("resizeServerGroup", server_group("resizeServerGroup")),
    "shrinkCluster": ("shrinkCluster", server_group("shrinkCluster")),
    "modifyScalingProcess": ("modifyScalingProcess", server_group("modifyScalingProcess")),
    "modifyAwsScalingProcess": ("modifyScalingProcess", server_group("modifyScalingProcess")),
    "findImage": ("findImageFromCluster", server_group("findImageFromCluster")),
    "deployManifest": ("deployManifest", deploy_manifest),
    "deleteManifest": ("deleteManifest", targeted("deleteManifest")),
    "scaleManifest": ("scaleManifest", targeted("scaleManifest")),
    "patchManifest": ("patchManifest", targeted("patchManifest")),
    "undoRolloutManifest": ("undoRolloutManifest", targeted("undoRolloutManifest")),
    "runJobManifest": ("runJob", run_job_manifest),
}
