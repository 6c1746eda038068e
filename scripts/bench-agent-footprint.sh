#!/usr/bin/env bash
# Agent footprint next to Debian's prometheus-node-exporter doing the comparable job (collect this
# host's CPU, memory, filesystems, network once per second for DURATION seconds): resident memory
# at the end and CPU time per collection, both read from /proc. Needs release builds:
#   cargo build --release -p faultline-agent -p faultline-collector
# Usage: scripts/bench-agent-footprint.sh [DURATION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
command -v prometheus-node-exporter >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
tick=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cport=$(free_port)
token=bench-token-0123456789abcdef
cat > "$work/collector.toml" <<TOML
[listen]
address = "127.0.0.1:$cport"
[storage]
path = "$work/state.db"
[[agents]]
id = "bench"
token = "$token"
TOML
cat > "$work/agent.toml" <<TOML
[agent]
id = "bench"
[push]
url = "http://127.0.0.1:$cport"
token = "$token"
[outbox]
dir = "$work/outbox"
[host]
interval = "1s"
TOML
RUST_LOG=warn target/release/faultline-collector run --config "$work/collector.toml" 2>"$work/collector.log" &
sleep 1
RUST_LOG=warn target/release/faultline-agent run --config "$work/agent.toml" 2>"$work/agent.log" &
agent=$!
nport=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$nport" 2>"$work/node.log" &
node=$!
sleep 2
a0=$(cpu_ticks $agent); n0=$(cpu_ticks $node)
for _ in $(seq 1 "$duration"); do
  curl -fsS "http://127.0.0.1:$nport/metrics" -o /dev/null
  sleep 1
done
a1=$(cpu_ticks $agent); n1=$(cpu_ticks $node)
arss=$(rss_kib $agent); nrss=$(rss_kib $node)
series=$(curl -fsS "http://127.0.0.1:$cport/metrics" | grep -c '^faultline_host_' || true)
nseries=$(curl -fsS "http://127.0.0.1:$nport/metrics" | grep -vc '^#' || true)
awk -v d="$duration" -v t="$tick" -v a="$((a1 - a0))" -v n="$((n1 - n0))" -v ar="$arss" -v nr="$nrss" \
    -v s="$series" -v ns="$nseries" 'BEGIN {
  printf "%-26s %10s %22s %10s\n", "", "RSS (MiB)", "CPU ms per collection", "series"
  printf "%-26s %10.1f %22.2f %10d\n", "faultline-agent", ar/1024, a/t/d*1000, s
  printf "%-26s %10.1f %22.2f %10d\n", "prometheus-node-exporter", nr/1024, n/t/d*1000, ns
  printf "ratio agent/node-exporter: RSS %.2fx, CPU %.2fx (%d collections each, CLK_TCK=%d)\n", ar/nr, (n>0 ? a/n : 0), d, t
}'
