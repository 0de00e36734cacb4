#!/usr/bin/env bash
# The images the deploy tests need, built here because no image registry is reachable:
#   wapipe-local/debian:bookworm   a minimal Debian (debootstrap, then docker import)
#   wapipe-local/python:3.11       Debian's python3 (3.11) on it: the Dockerfile's BASE in tests
#   rabbitmq:3.10-management       stand-in from Debian's rabbitmq-server (3.10)
#   postgres:15                    stand-in from Debian's postgresql (15)
#   prom/prometheus:v2.42.0        stand-in from Debian's prometheus (2.42.0)
# The last two carry the public names compose.yaml uses, so that file is tested unchanged.
# Each image is skipped when it exists already.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have wapipe-local/debian:bookworm; then
    mirror=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]*debian/?( |$)' /etc/apt/sources.list* 2>/dev/null \
        | grep -oE 'https?://[^ ]*' | head -1)
    root=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$root" -c . | docker import - wapipe-local/debian:bookworm >/dev/null
    rm -rf "$root"
fi
build() { have "$1" || docker build --quiet -t "$1" "images/$2" >/dev/null; }
mkdir -p images/python/ca
cp /usr/local/share/ca-certificates/*.crt images/python/ca/ 2>/dev/null || true
build wapipe-local/python:3.11 python
build rabbitmq:3.10-management rabbitmq
build postgres:15 postgres
build prom/prometheus:v2.42.0 prometheus
echo "images ready"
