#!/usr/bin/env bash
# Runs Faultline's main job on this machine: a collector and a local agent on embedded defaults
# (SQLite state under .demo/, this host's metrics), until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${FAULTLINE_PORT:-9410}
state=${FAULTLINE_DEMO_DIR:-$PWD/.demo}
mkdir -p "$state"
cargo build --bins --quiet

token_file="$state/token"
[ -s "$token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"

cat > "$state/collector.toml" <<TOML
[listen]
address = "127.0.0.1:$port"

[storage]
path = "$state/collector.db"

[[agents]]
id = "demo-agent"
token_file = "$token_file"
TOML

cat > "$state/agent.toml" <<TOML
[agent]
id = "demo-agent"
site = "demo-site"
room = "demo-room"

[push]
url = "http://127.0.0.1:$port"
token_file = "$token_file"

[outbox]
dir = "$state/outbox"

[host]
interval = "5s"
TOML

./target/debug/faultline-collector run --config "$state/collector.toml" 2>"$state/collector.log" &
collector=$!
./target/debug/faultline-agent run --config "$state/agent.toml" 2>"$state/agent.log" &
agent=$!
trap 'kill $agent $collector 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat <<MSG
Faultline is running.
  metrics:   http://127.0.0.1:$port/metrics    (try: curl -s http://127.0.0.1:$port/metrics | grep faultline_host_cpu)
  health:    http://127.0.0.1:$port/healthz
  logs:      $state/collector.log, $state/agent.log
  configs:   $state/collector.toml, $state/agent.toml
Press Ctrl-C to stop.
MSG
wait
