#!/bin/sh
# The public image takes its Erlang cookie from $RABBITMQ_ERLANG_COOKIE or makes one; so here.
set -e
cookie=/var/lib/rabbitmq/.erlang.cookie
if [ ! -s "$cookie" ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$cookie"
    chmod 600 "$cookie"
fi
exec "$@"
