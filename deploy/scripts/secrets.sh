#!/usr/bin/env bash
# Makes deploy/secrets/ for compose.yaml, each file only when it is missing (so running it again
# rotates nothing). Random passwords and tokens; the RabbitMQ and PostgreSQL URLs use them.
set -euo pipefail
dir="$(dirname "$0")/../secrets"
mkdir -p "$dir"
cd "$dir"
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() { [[ -s $1 ]] || { umask 022; printf '%s' "$2" >"$1"; }; }

put rabbitmq_password "$(random)"
put postgres_password "$(random)"
put app_secrets "$(random)"
put verify_token "$(random)"
put access_token "$(random)"
put grafana_admin_password "$(random)"
put amqp_url "amqp://wapipe:$(cat rabbitmq_password)@rabbitmq:5672/"
put database_url "postgresql://wapipe:$(cat postgres_password)@postgres:5432/wapipe"
put rabbitmq.conf "$(printf '%s\n' \
    "default_user = wapipe" \
    "default_pass = $(cat rabbitmq_password)" \
    "loopback_users = none" \
    "listeners.tcp.default = 5672" \
    "management.tcp.port = 15672" \
    "prometheus.return_per_object_metrics = true")"
echo "secrets in $(pwd)"
