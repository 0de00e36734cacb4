#!/usr/bin/env bash
# Roll the compose stack's ingress without a gap: start a new ingress container beside the old
# one, in the network namespace `ingress-net` holds (so both listen on its port 8080, shared
# with SO_REUSEPORT), wait until the new one listens (its broker connected), then stop the
# old one. At SIGTERM the old one hands new connections to the new one and answers what it has
# read (docs/operations.md, "The ingress on one host"). The new container runs the service's
# current definition and image: rebuild or edit first, then roll.
#   deploy/scripts/roll.sh -f deploy/compose.yaml [-p project]      # or: make compose-roll-ingress
# Exits non-zero, saying why, if the new one does not come up (the old one is left running) or
# the old one does not stop cleanly.
set -euo pipefail

here=$(dirname "$0")
compose() { "$here/compose.sh" "$@"; }
ready_within_s=60

old=$(compose "$@" ps --quiet ingress)
if [[ -z $old ]]; then
    echo "roll: no ingress container runs: start the stack first (make compose-up)" >&2
    exit 1
fi
count=$(wc -l <<<"$old")
compose "$@" up --detach --no-deps --no-recreate --scale "ingress=$((count + 1))" ingress
new=$(compose "$@" ps --quiet ingress | grep -vxF "$old" || true)
if [[ -z $new ]]; then
    echo "roll: compose started no new ingress container" >&2
    exit 1
fi

# "ingress listening": it has its broker and listens on the shared port (an ingress listens
# only once its broker is connected), so the old one's handover has a listener to steer to.
# The log is read whole, not piped to `grep -q`: under pipefail grep's early exit fails the pipe.
deadline=$((SECONDS + ready_within_s))
until [[ $(docker logs "$new" 2>&1) == *'"ingress listening"'* ]]; do
    if [[ $(docker inspect --format '{{.State.Running}}' "$new") != true ]] || ((SECONDS > deadline)); then
        echo "roll: the new ingress ${new:0:12} did not listen within ${ready_within_s} s; the old one still runs. Its last lines:" >&2
        docker logs --tail 5 "$new" >&2 || true
        docker rm --force "$new" >/dev/null || true
        exit 1
    fi
    sleep 0.5
done

for container in $old; do
    docker stop "$container" >/dev/null  # SIGTERM; compose.yaml's stop_grace_period applies
    status=$(docker inspect --format '{{.State.ExitCode}}' "$container")
    docker rm "$container" >/dev/null
    if ((status != 0)); then
        echo "roll: the old ingress ${container:0:12} exited $status, not 0 (cut at the grace period?)" >&2
        exit 1
    fi
done
echo "roll: ingress ${new:0:12} serves; the old one handed over and exited 0" >&2
