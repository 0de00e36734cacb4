"""deploy/k8s renders and validates offline, and the check fails on a broken manifest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.deploy.manifests import K8S, KUSTOMIZATIONS, errors, main, render

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None and os.environ.get("WAPIPE_DEPLOY_TESTS") != "required",
    reason="kubectl (its built-in kustomize renders deploy/k8s) is not installed",
)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_every_rendered_object_is_valid(folder: Path) -> None:
    objects = render(folder)
    assert list(errors(objects)) == []
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "ScaledObject", "RabbitmqCluster", "Job", "Ingress"} <= kinds


def test_the_sender_keeps_two_standbys_and_no_more_than_its_shards() -> None:
    objects = render(K8S / "overlays" / "production")
    (sender,) = [
        o for o in objects if o["kind"] == "ScaledObject" and "sender" in o["metadata"]["name"]
    ]
    assert sender["spec"]["minReplicaCount"] >= 2
    assert sender["spec"]["maxReplicaCount"] <= 8  # shared/topology.py SEND_SHARDS


BROKEN = {
    "a misspelt Deployment field": (
        "Deployment", "wapipe-status", '[{"op": "add", "path": "/spec/replica", "value": 2}]',
        "replica",
    ),
    "a ScaledObject count of the wrong type": (
        "ScaledObject", "wapipe-sender",
        '[{"op": "replace", "path": "/spec/minReplicaCount", "value": "two"}]',
        "minReplicaCount",
    ),
    "an unknown RabbitmqCluster field": (
        "RabbitmqCluster", "wapipe-rabbitmq",
        '[{"op": "add", "path": "/spec/plugins", "value": ["rabbitmq_shovel"]}]',
        "plugins",
    ),
    "a container without probes": (
        "Deployment", "wapipe-media",
        '[{"op": "remove", "path": "/spec/template/spec/containers/0/livenessProbe"}]',
        "probe",
    ),
    "a writable root filesystem": (
        "Deployment", "wapipe-ingress",
        '[{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/'
        'readOnlyRootFilesystem", "value": false}]',
        "readOnlyRootFilesystem",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_the_check_fails_on_a_broken_manifest(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, name, patch, expected = BROKEN[case]
    base = os.path.relpath(K8S / "base", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{base}]\n"
        f"patches:\n  - target: {{kind: {kind}, name: {name}}}\n    patch: '{patch}'\n"
    )
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "INVALID" in out.out
    assert f"{kind}/{name}" in out.err
    assert expected in out.err
