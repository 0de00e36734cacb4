#!/usr/bin/env bash
# `docker compose "$@"`, exiting with Compose's own status, and when it failed for a reason this
# stack knows, one more line saying what to do: a host port taken (by a local `make up`, say)
# names the variable that moves it; an image no registry can give names its profile.
#   deploy/scripts/compose.sh -f deploy/compose.yaml up --detach --wait
set -uo pipefail

if ! docker compose version >/dev/null 2>&1; then
    echo "compose: Compose v2 is not installed (docker compose): run deploy/scripts/engine.sh as root" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
docker compose "$@" 2> >(tee "$log" >&2)
status=$?
wait  # for tee to write the last of stderr
((status == 0)) && exit 0

# The host ports compose.yaml publishes, each with the variable that moves it and its default.
publish=(
    WAPIPE_INGRESS_PUBLISH=127.0.0.1:18080
    WAPIPE_SANDBOX_PUBLISH=127.0.0.1:18090
    WAPIPE_RABBITMQ_UI_PUBLISH=127.0.0.1:18672
    WAPIPE_PROMETHEUS_PUBLISH=127.0.0.1:19090
    WAPIPE_GRAFANA_PUBLISH=127.0.0.1:13000
)
taken=$(grep -oE '(listen tcp4? |Bind for )[0-9.:]+:[0-9]+' "$log" | grep -oE '[0-9]+$' | head -1)
if [[ -n $taken ]]; then
    for entry in "${publish[@]}"; do
        name=${entry%%=*}
        value=${!name:-${entry#*=}}
        if [[ ${value##*:} == "$taken" ]]; then
            echo "compose: port $taken ($name=$value) is taken on this host: set $name=127.0.0.1:<free port> (127.0.0.1: picks one)" >&2
            exit "$status"
        fi
    done
    echo "compose: host port $taken is taken on this host" >&2
fi
if grep -qE 'pull access denied|failed to resolve reference|registry-1\.docker\.io|no such host|i/o timeout' "$log"; then
    if grep -q grafana "$log"; then
        echo "compose: grafana/grafana cannot be pulled here (no image registry reachable), and it has no local stand-in: the observability profile cannot start; start Prometheus alone: docker compose -f deploy/compose.yaml --profile observability up --detach prometheus" >&2
    else
        echo "compose: an image could not be pulled (no image registry reachable?): deploy/scripts/images.sh builds the stand-ins compose.yaml names; any other needs a registry" >&2
    fi
fi
exit "$status"
