"""Spinnaker's Kubernetes stages → Gennaker's.

- Server group stages (Kubernetes provider V1 shapes: `credentials`, `namespaces`/`regions`,
  `cluster`, `target`): destroy/disable/enable/resize server group, shrink cluster, modify scaling
  process, and `findImage` — which in Spinnaker is *Find Image from Cluster*, so it maps to
  Gennaker's `findImageFromCluster` (Gennaker's `findImage` reads registry tags).
- `deploy`: see `deploy_clusters.py`.
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
