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
# The Flows endpoint's key pair (docs/flows.md): 2048-bit RSA, unencrypted; to encrypt it, put
# its passphrase in flows_private_key_passphrase (empty: none). Upload the public half with
# `wapipe flows keys upload`.
# Readable like the other files here (openssl's -out would make it 0600): the containers' user
# (10001) reads them.
[[ -s flows_private_key ]] ||
    put flows_private_key "$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null)"
[[ -e flows_private_key_passphrase ]] || put flows_private_key_passphrase ""
put amqp_url "amqp://wapipe:$(cat rabbitmq_password)@rabbitmq:5672/"
put database_url "postgresql://wapipe:$(cat postgres_password)@postgres:5432/wapipe"
put rabbitmq.conf "$(printf '%s\n' \
    "default_user = wapipe" \
    "default_pass = $(cat rabbitmq_password)" \
    "loopback_users = none" \
    "listeners.tcp.default = 5672" \
    "management.tcp.port = 15672" \
    "prometheus.return_per_object_metrics = true")"
# The three-node cluster (compose.cluster.yaml): one Erlang cookie shared by the nodes, classic
# config peer discovery, every quorum queue kept on all three; the services get the three URLs.
put erlang_cookie "$(random)$(random)"
put amqp_url_cluster "$(for node in rabbitmq rabbitmq-2 rabbitmq-3; do
    printf 'amqp://wapipe:%s@%s:5672/,' "$(cat rabbitmq_password)" "$node"; done | sed 's/,$//')"
put rabbitmq-cluster.conf "$(cat rabbitmq.conf; echo; printf '%s\n' \
    "cluster_formation.peer_discovery_backend = classic_config" \
    "cluster_formation.classic_config.nodes.1 = rabbit@rabbitmq" \
    "cluster_formation.classic_config.nodes.2 = rabbit@rabbitmq-2" \
    "cluster_formation.classic_config.nodes.3 = rabbit@rabbitmq-3" \
    "quorum_queue.continuous_membership_reconciliation.enabled = true" \
    "quorum_queue.continuous_membership_reconciliation.target_group_size = 3")"
echo "secrets in $(pwd)"
