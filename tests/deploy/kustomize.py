"""A renderer of the kustomize subset deploy/k8s uses, so `make test` validates the rendered
objects without kubectl (no PyPI package renders a kustomization). Anything outside the
subset is refused, not ignored: a new feature in kustomization.yaml must be taught here (and
test_k8s_manifests.py compares the result with `kubectl kustomize` where kubectl exists).

The subset: `resources` (files), `namespace`, `labels` (pairs, on metadata.labels only),
`configMapGenerator` (files), `images` (newName, newTag, digest). A generated ConfigMap's
name gets a content hash suffix (not kustomize's own hash, the same idea), and the pod
templates' references to it follow.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

_KNOWN = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "images"}
_CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding"}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


class UnsupportedKustomization(Exception):
    """kustomization.yaml uses something this renderer does not implement."""


def load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[Obj]:
    """The objects `kubectl kustomize directory` would print (up to the ConfigMap hash)."""
    kust: Obj = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kust) - _KNOWN
    if unknown:
        raise UnsupportedKustomization(f"kustomization.yaml: {sorted(unknown)}")
    objects: list[Obj] = []
    for rel in kust.get("resources", []):
        path = directory / rel
        if not path.is_file():
            raise UnsupportedKustomization(f"resource {rel!r} is not a file")
        objects += load_all(path)
    renames: dict[str, str] = {}
    for gen in kust.get("configMapGenerator", []):
        cm = _config_map(directory, gen)
        renames[gen["name"]] = cm["metadata"]["name"]
        objects.append(cm)
    for obj in objects:
        _apply(obj, kust, renames)
    return objects


def _config_map(directory: Path, gen: Obj) -> Obj:
    if set(gen) - {"name", "files"}:
        raise UnsupportedKustomization(f"configMapGenerator {gen.get('name')}: {sorted(gen)}")
    data: dict[str, str] = {}
    for entry in gen["files"]:
        key, _, rel = entry.rpartition("=")
        data[key or Path(rel).name] = (directory / rel).read_text()
    digest = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:10]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{gen['name']}-{digest}"},
        "data": data,
    }


def _apply(obj: Obj, kust: Obj, renames: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    if "namespace" in kust and obj["kind"] not in _CLUSTER_SCOPED:
        meta["namespace"] = kust["namespace"]
    for entry in kust.get("labels", []):
        if set(entry) - {"pairs"}:
            raise UnsupportedKustomization(f"labels: {sorted(entry)}")
        meta.setdefault("labels", {}).update(entry["pairs"])
    if obj["kind"] not in _WORKLOADS:
        return
    pod = obj["spec"]["template"]["spec"]
    for volume in pod.get("volumes", []):
        cm = volume.get("configMap")
        if cm is not None and cm["name"] in renames:
            cm["name"] = renames[cm["name"]]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        container["image"] = _image(container["image"], kust.get("images", []))


def _image(image: str, rules: list[Obj]) -> str:
    for rule in rules:
        if image == rule["name"]:
            name = rule.get("newName", image)
            if "digest" in rule:
                return f"{name}@{rule['digest']}"
            return f"{name}:{rule['newTag']}" if "newTag" in rule else name
    return image


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in _WORKLOADS]


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def normalized(objects: list[Obj], generated: set[str]) -> dict[tuple[str, str], Obj]:
    """Objects keyed by (kind, name), generated names' hash suffixes replaced by `HASH`: for
    comparing two renderings."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str):
            for base in generated:
                if value.startswith(f"{base}-") and len(value) == len(base) + 11:
                    return f"{base}-HASH"
        return value

    out: dict[tuple[str, str], Obj] = {}
    for obj in copy.deepcopy(objects):
        obj = strip(obj)
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out
