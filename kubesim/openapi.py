"""Minimal OpenAPI documents, built from the resource registry: enough for kubectl, not a full schema.

kubectl 1.32 reads OpenAPI v3 (`/openapi/v3`, an index of `serverRelativeURL`s, then one document per
group-version) to learn that the server validates fields itself: `QueryParamVerifierV3` in
k8s.io/cli-runtime `resource/query_param_verifier_v3.go` looks for a PATCH operation tagged with the
kind's `x-kubernetes-group-version-kind` that takes a `fieldValidation` query parameter. When it finds
one it sends `fieldValidation=Strict` and skips client-side schema validation (which would need the
protobuf OpenAPI v2 document). `kubectl explain` renders the kind's schema from the same documents.

PATCH operations do not list `application/strategic-merge-patch+json`, because a strategic patch computed
from these property-less schemas would fail: client-side `kubectl apply` then computes strategic merge
patches from its compiled-in types (built-in kinds) or JSON merge patches (custom resources), as it does
against a server without OpenAPI.

client-go asks for `/openapi/v2` in protobuf (gnostic `openapi_v2.Document`). kubesim answers a valid
but empty document there (`swagger` and `info` only, hand-encoded: field numbers from
google/gnostic `openapiv2/OpenAPIv2.proto`), so kubectl's schema validation finds no model and skips, as
it does on a real server for a kind it has no schema for (e.g. a custom resource applied together with
its CRD, which then fails with "ensure CRDs are installed first"). JSON requests get the JSON document.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubesim.errors import ApiError
from kubesim.resources import KUBE_VERSION, Registry, ResourceType

Obj = dict[str, Any]

_GROUP_PACKAGES = {
    "": "io.k8s.api.core",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def definition_name(rt: ResourceType) -> str:
    if rt.custom:
        return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"
    package = _GROUP_PACKAGES.get(rt.group, f"io.k8s.api.{rt.group.split('.')[0]}")
    return f"{package}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _schema(rt: ResourceType, ref_prefix: str) -> Obj:
    what = "custom resource (schemaless in kubesim)" if rt.custom else "object"
    return {
        "description": f"{rt.kind} is a {rt.api_version} {what}. kubesim serves a minimal schema: fields are "
                       "not described beyond the top level.",
        "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of "
                                          "an object.", "type": "string"},
            "kind": {"description": "Kind is a string value representing the REST resource this object "
                                    "represents.", "type": "string"},
            "metadata": {"description": "Standard object's metadata.", "allOf": [{"$ref": ref_prefix + _OBJECT_META}]},
            "spec": {"description": f"Desired state of the {rt.kind}.", "type": "object",
                     "x-kubernetes-preserve-unknown-fields": True},
            "status": {"description": f"Most recently observed status of the {rt.kind}.", "type": "object",
                       "x-kubernetes-preserve-unknown-fields": True},
        },
        "x-kubernetes-group-version-kind": [_gvk(rt)],
    }


def _object_meta() -> Obj:
    return {
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "type": "object",
        "properties": {
            name: {"description": f"metadata.{name}", "type": kind}
            for name, kind in (("name", "string"), ("namespace", "string"), ("labels", "object"),
                               ("annotations", "object"), ("uid", "string"), ("resourceVersion", "string"),
                               ("generation", "integer"), ("finalizers", "array"), ("ownerReferences", "array"),
                               ("managedFields", "array"), ("creationTimestamp", "string"))
        },
    }


def _object_path(rt: ResourceType) -> str:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"{base}{scope}/{rt.plural}/{{name}}"


def _operation_id(verb: str, rt: ResourceType) -> str:
    group = "".join(p.capitalize() for p in (rt.group.split(".")[0] or "core",))
    scope = "Namespaced" if rt.namespaced else ""
    return f"{verb}{group}{rt.version.capitalize()}{scope}{rt.kind}"


def _v3_operations(rt: ResourceType) -> Obj:
    ref = {"$ref": "#/components/schemas/" + definition_name(rt)}
    query = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for n in _WRITE_PARAMS]
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    common = {"x-kubernetes-group-version-kind": _gvk(rt)}
    return {
        "get": {"operationId": _operation_id("read", rt), "responses": ok, "x-kubernetes-action": "get", **common},
        "put": {"operationId": _operation_id("replace", rt), "parameters": query,
                "requestBody": {"content": {"*/*": {"schema": ref}}, "required": True},
                "responses": ok, "x-kubernetes-action": "put", **common},
        "patch": {"operationId": _operation_id("patch", rt),
                  "parameters": [*query, {"name": "force", "in": "query", "schema": {"type": "boolean"}}],
                  "requestBody": {"content": {t: {"schema": {"$ref": "#/components/schemas/" + _PATCH}}
                                              for t in _PATCH_TYPES}, "required": True},
                  "responses": ok, "x-kubernetes-action": "patch", **common},
        "delete": {"operationId": _operation_id("delete", rt), "responses": {"200": {"description": "OK"}},
                   "x-kubernetes-action": "delete", **common},
    }


def _v3_group_version(registry: Registry, group: str, version: str) -> Obj | None:
    served = [r for r in registry.all() if r.group == group and r.version == version]
    if not served:
        return None
    schemas: Obj = {_OBJECT_META: _object_meta(), _PATCH: {"description": "a patch", "type": "object"}}
    paths: Obj = {}
    for rt in served:
        schemas[definition_name(rt)] = _schema(rt, "#/components/schemas/")
        paths[_object_path(rt)] = _v3_operations(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kubesim)", "version": KUBE_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _v2(registry: Registry) -> Obj:
    definitions: Obj = {_OBJECT_META: _object_meta(), _PATCH: {"description": "a patch", "type": "object"}}
    paths: Obj = {}
    for rt in registry.all():
        definitions[definition_name(rt)] = _schema(rt, "#/definitions/")
        paths[_object_path(rt)] = {
            "patch": {"operationId": _operation_id("patch", rt), "consumes": list(_PATCH_TYPES),
                      "produces": ["application/json"],
                      "parameters": [{"name": n, "in": "query", "type": "string", "uniqueItems": True}
                                     for n in (*_WRITE_PARAMS, "force")],
                      "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/" +
                                                                              definition_name(rt)}}},
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": _gvk(rt)},
        }
    return {"swagger": "2.0", "info": {"title": "Kubernetes (kubesim)", "version": KUBE_VERSION},
            "paths": paths, "definitions": definitions}


# Requested with "...spec.v2@v1.0+protobuf"; answered with the form Go's mime parser accepts, like kube-openapi.
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def wants_v2_protobuf(path: str, accept: str) -> bool:
    return path.rstrip("/") == "/openapi/v2" and "protobuf" in accept


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2); lengths here stay far below 2**28."""
    tag, size = (number << 3) | 2, len(payload)
    out = bytearray([tag])
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out) + payload


def v2_protobuf() -> bytes:
    """openapi.v2.Document{swagger: "2.0", info: {title, version}}."""
    info = _pb_field(1, b"Kubernetes (kubesim)") + _pb_field(2, KUBE_VERSION.encode())
    return _pb_field(1, b"2.0") + _pb_field(2, info)


def _hash(doc: Obj) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:64]


def document(registry: Registry, path: str) -> Obj:
    """The JSON OpenAPI document at `path` (`/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/<g>/<v>`)."""
    parts = path.strip("/").split("/")
    if parts == ["openapi", "v2"]:
        return _v2(registry)
    if parts == ["openapi", "v3"]:
        index: Obj = {}
        gvs = [("", "v1")] + [(g, v) for g, vs in registry.groups().items() for v in vs]
        for group, version in gvs:
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            doc = _v3_group_version(registry, group, version)
            if doc is not None:
                index[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_hash(doc)}"}
        return {"paths": index}
    doc = None
    if len(parts) == 4 and parts[:3] == ["openapi", "v3", "api"]:
        doc = _v3_group_version(registry, "", parts[3])
    elif len(parts) == 5 and parts[:3] == ["openapi", "v3", "apis"]:
        doc = _v3_group_version(registry, parts[3], parts[4])
    if doc is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return doc
