"""Offline checks of deploy/k8s: render each kustomization, validate every object.

Built-in kinds go through kubernetes-validate's schemas (strict: an unknown or misspelt field is
an error); custom resources (KEDA, RabbitmqCluster) through their CRDs' openAPIV3Schema, kept in
deploy/k8s/crds. Then wapipe's own rules: every container probed, bounded, non-root, read-only.
Usage: python -m tests.deploy.manifests [KUSTOMIZATION_DIR ...]   (exit 1 on any error)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import jsonschema
import kubernetes_validate
import yaml

K8S: Final = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATIONS: Final = (K8S / "base", K8S / "overlays" / "production")
KUBERNETES_VERSION: Final = "1.33.0"


def render(kustomization: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a folder; raises CalledProcessError with kustomize's complaint."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema, for every served version."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def errors(objects: list[dict[str, Any]]) -> Iterator[str]:
    custom = crd_schemas()
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if key in custom:
            validator = jsonschema.Draft7Validator(_structural(custom[key]))
            for error in validator.iter_errors(obj):
                yield f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(map(str, exc.path))
                yield f"{name}: {path}: {exc.message}"
            except kubernetes_validate.SchemaNotFoundError:
                yield f"{name}: no schema for {key} (add its CRD to deploy/k8s/crds)"
        yield from (f"{name}: {problem}" for problem in _our_rules(obj))


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema as JSON Schema: objects without listed properties stay open (as the API
    server treats x-kubernetes-preserve-unknown-fields); listed ones are closed, as it prunes."""
    schema = dict(schema)
    for key in [k for k in schema if k.startswith("x-kubernetes-")]:
        schema.pop(key)
    if "properties" in schema:
        schema["properties"] = {k: _structural(v) for k, v in schema["properties"].items()}
        if schema.get("type") == "object" and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _structural(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        schema["items"] = _structural(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [_structural(part) for part in schema[key]]
    if schema.get("format") == "int-or-string" or "x-kubernetes-int-or-string" in schema:
        schema.pop("type", None)
    return schema


def _our_rules(obj: dict[str, Any]) -> Iterator[str]:
    if obj.get("kind") not in ("Deployment", "Job"):
        return
    pod = obj["spec"]["template"]["spec"]
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        yield "pod securityContext.runAsNonRoot is not true"
    for container in pod["containers"]:
        where = f"container {container['name']}"
        context = container.get("securityContext", {})
        if not context.get("readOnlyRootFilesystem"):
            yield f"{where}: readOnlyRootFilesystem is not true"
        resources = container.get("resources", {})
        if not resources.get("requests") or not resources.get("limits"):
            yield f"{where}: no resource requests and limits"
        if obj["kind"] == "Deployment" and not (
            "readinessProbe" in container and "livenessProbe" in container
        ):
            yield f"{where}: needs a readiness and a liveness probe"


def main(argv: list[str]) -> int:
    folders = [Path(arg) for arg in argv] or list(KUSTOMIZATIONS)
    failed = False
    for folder in folders:
        try:
            found = list(errors(render(folder)))
        except subprocess.CalledProcessError as exc:
            found = [f"kustomize: {exc.stderr.strip()}"]
        for line in found:
            print(f"{folder}: {line}", file=sys.stderr)
        failed = failed or bool(found)
        print(f"{folder}: {'INVALID' if found else 'valid'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
