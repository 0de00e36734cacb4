"""deploy/k8s renders and validates offline, and the check fails on a broken manifest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

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


def deployment(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_the_ingress_rolls_without_a_gap(folder: Path) -> None:
    """A new pod is ready before an old one goes; the old one leaves the endpoints (preStop)
    before SIGTERM, then has the time to answer what it has read (the confirm deadline, 2 s)."""
    ingress = deployment(render(folder), "wapipe-ingress")
    rolling = ingress["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0
    assert rolling["maxSurge"] >= 1
    pod = ingress["spec"]["template"]["spec"]
    pre_stop_s = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop_s >= 3
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + 2 * 2


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_every_service_has_time_to_finish_what_it_holds(folder: Path) -> None:
    objects = render(folder)
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] != "wapipe-ingress":
            assert obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30, obj
    sender = deployment(objects, "wapipe-sender")
    assert sender["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_the_broker_is_a_three_node_cluster(folder: Path) -> None:
    (cluster,) = [o for o in render(folder) if o["kind"] == "RabbitmqCluster"]
    assert cluster["spec"]["replicas"] == 3
    assert "target_group_size = 3" in cluster["spec"]["rabbitmq"]["additionalConfig"]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_each_worker_scales_on_its_own_queue(folder: Path) -> None:
    """Every worker `wapipe worker` runs has a Deployment, scaled by KEDA on its queue."""
    from wapipe.cli.services import WORKERS

    objects = render(folder)
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["triggers"][0]["metadata"]["queueName"]
        for o in objects
        if o["kind"] == "ScaledObject"
    }
    for kind in WORKERS:
        worker = deployment(objects, f"wapipe-{kind}")
        assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker", kind]
        assert f"wapipe-{kind}" in scaled, kind
    assert scaled["wapipe-flows"] == "wa.flows.requests"


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_the_ingress_serves_flows_with_its_key(folder: Path) -> None:
    objects = render(folder)
    ingress = deployment(objects, "wapipe-ingress")
    env = {e["name"]: e for e in ingress["spec"]["template"]["spec"]["containers"][0]["env"]}
    # Both from the Secret and optional in it: an install without Flows keeps its ingress up.
    for name in ("WAPIPE_FLOWS_PRIVATE_KEY", "WAPIPE_FLOWS_PRIVATE_KEY_PASSPHRASE"):
        assert env[name]["valueFrom"]["secretKeyRef"]["optional"], name
    (route,) = [o for o in objects if o["kind"] == "Ingress"]
    paths = {p["path"] for rule in route["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/webhook", "/flows"}
    flows = deployment(objects, "wapipe-flows")
    handlers = flows["spec"]["template"]["spec"]["containers"][0]["env"]
    assert any(e["name"] == "WAPIPE_FLOW_HANDLERS" for e in handlers)
