"""deploy/observability: the alert rules pass promtool's check and their unit tests, and every
dashboard panel's query returns data from Prometheus scraping the running compose stack."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import urllib.parse
from functools import partial
from typing import Any

import pytest

from tests.deploy.stack import DEPLOY, Stack, run, unavailable, wait_until

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]

OBSERVABILITY = DEPLOY / "observability"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (Debian's prometheus package)")
        raise AssertionError("unreachable")
    return found


def test_alert_rules_pass_promtool_check() -> None:
    out = run([promtool(), "check", "rules", str(OBSERVABILITY / "alerts.rules.yml")])
    assert "SUCCESS: 4 rules found" in out


def test_every_alert_has_a_unit_test_and_they_pass() -> None:
    rules = (OBSERVABILITY / "alerts.rules.yml").read_text()
    tests = (OBSERVABILITY / "alerts.test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 4
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"{alert} has no unit test"
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yml"],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((OBSERVABILITY / "dashboard.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    answer = stack.get_json(
        "prometheus", 9090, "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scraped(stack: Stack, expr: str) -> bool:
    return bool(query(stack, expr))


def has_data(stack: Stack, expr: str) -> bool:
    """At least one series with a number (not NaN: a quantile of no observations)."""
    return any(not math.isnan(float(series["value"][1])) for series in query(stack, expr))


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    stack("up", "--detach", "--wait", "prometheus")
    wait_until(
        lambda: all(
            t["health"] == "up"
            for t in stack.get_json("prometheus", 9090, "/api/v1/targets")["data"]["activeTargets"]
        ),
        60,
        "every scrape target up",
    )
    # Traffic the panels show: a customer writes, two replies go out, the first refused once
    # (a transient Cloud API error: the API-errors panel), the second once with 190 (a refused
    # token: the sender pauses the number, the paused-numbers panel).
    stack("exec", "-T", "sandbox", "wapipe", "sandbox", "customer", "send", "16315551181",
          "--text", "hello prometheus")  # fmt: skip
    number = stack.get_json("sandbox", 8090, "/_sandbox/state")["businesses"][0]["phone_number_id"]
    for code, body in ((131000, "refused once"), (190, "token refused once")):
        stack.post_json(
            "sandbox", 8090, "/_sandbox/faults", {"endpoint": "messages", "count": 1, "code": code}
        )
        stack("exec", "-T", "sender-b", "wapipe", "send", "text", "--from", str(number),
              "--to", "16315551181", "--body", body)  # fmt: skip

        seen = (
            'wapipe_sender_refused_total{code="131000"}' if code != 190 else "wapipe_sender_paused"
        )
        wait_until(partial(scraped, stack, seen), 90, f"{seen} scraped")

    queries = panel_queries()
    assert len(queries) >= 12
    missing: list[str] = []

    def all_have_data() -> bool:
        missing[:] = [f"{title}: {expr}" for title, expr in queries if not has_data(stack, expr)]
        return not missing

    try:
        wait_until(all_have_data, 180, "every panel's query to return data")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; no data for:\n" + "\n".join(missing)) from None
    rules = stack.get_json("prometheus", 9090, "/api/v1/rules")["data"]["groups"]
    assert sorted(rule["name"] for group in rules for rule in group["rules"]) == [
        "WapipeDeadLettersGrowing",
        "WapipeIngressUnavailable",
        "WapipeNumberPaused",
        "WapipeQueueWithoutConsumer",
    ]
