#!/usr/bin/env python3
"""The image's HEALTHCHECK: GET the running command's own /healthz, found from PID 1's arguments.

``wapipe ingress`` answers on WAPIPE_INGRESS_PORT (8080); ``wapipe worker KIND`` on its metrics
port (WAPIPE_METRICS_PORT, else the kind's default); ``wapipe sandbox`` on ``--port`` (8090,
its state page). A one-off command (migrate, topology, dlq, send) has nothing to check: healthy.
Exit status 0 is healthy, 1 is not (Docker's convention).
"""

import os
import sys
import urllib.request

WORKER_PORTS = {"status": 9101, "message": 9102, "account": 9103, "media": 9104, "sender": 9105}


def url_of(argv: list[str], env: dict[str, str]) -> str | None:
    if "ingress" in argv:
        return f"http://127.0.0.1:{env.get('WAPIPE_INGRESS_PORT', '8080')}/healthz"
    if "worker" in argv and argv.index("worker") + 1 < len(argv):
        kind = argv[argv.index("worker") + 1]
        port = env.get("WAPIPE_METRICS_PORT") or str(WORKER_PORTS.get(kind, 0))
        return f"http://127.0.0.1:{port}/healthz"
    if "sandbox" in argv and "customer" not in argv and "load" not in argv:
        port = argv[argv.index("--port") + 1] if "--port" in argv[:-1] else "8090"
        return f"http://127.0.0.1:{port}/_sandbox/state"
    return None


def main() -> int:
    with open("/proc/1/cmdline", "rb") as cmdline:
        argv = [part.decode() for part in cmdline.read().split(b"\0") if part]
    url = url_of(argv, dict(os.environ))
    if url is None:
        return 0
    try:
        # The URL is built above from a fixed scheme and host: S310 guards against file:// input.
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
