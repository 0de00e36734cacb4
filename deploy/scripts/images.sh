#!/usr/bin/env bash
# The images the compose stack and the deploy tests need, built here because no image registry is
# reachable, all from Debian 13 (trixie), from the Debian mirror apt uses on this machine:
#   wapipe-local/debian:trixie     a minimal Debian (debootstrap, then docker import)
#   wapipe-local/python:3.13       Debian's python3 (3.13) on it: the Dockerfile's BASE here
#   rabbitmq:4.0-management        stand-in from Debian's rabbitmq-server (4.0)
#   postgres:17                    stand-in from Debian's postgresql-17
#   prom/prometheus:v2.53.3        stand-in from Debian's prometheus (2.53)
# The last three carry the public names compose.yaml uses, so that file is tested unchanged.
# Each image is skipped when it exists already.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have wapipe-local/debian:trixie; then
    mirror=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]*debian/?( |$)' /etc/apt/sources.list* 2>/dev/null \
        | grep -oE 'https?://[^ ]*' | head -1)
    root=$(mktemp -d)
    debootstrap --variant=minbase trixie "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$root" -c . | docker import - wapipe-local/debian:trixie >/dev/null
    rm -rf "$root"
fi
build() { have "$1" || docker build --quiet -t "$1" "images/$2" >/dev/null; }
mkdir -p images/python/ca
cp /usr/local/share/ca-certificates/*.crt images/python/ca/ 2>/dev/null || true
build wapipe-local/python:3.13 python
build rabbitmq:4.0-management rabbitmq
build postgres:17 postgres
build prom/prometheus:v2.53.3 prometheus
echo "images ready"
