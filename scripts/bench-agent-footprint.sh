#!/usr/bin/env bash
# Agent footprint next to Debian's prometheus-node-exporter doing the comparable host job (collect
# this host's CPU, memory, filesystems, network once per second for DURATION seconds); the agent
# also polls a local net-snmp snmpd once per second as two devices (v2c: IF-MIB, UCD-SNMP,
# HOST-RESOURCES; v3 authPriv: IF-MIB), compresses each batch, writes it to its fsynced outbox and
# pushes it to a local collector. Resident memory at the end and CPU time per collection, both
# read from /proc, for RUNS runs; a summary line gives min / median / max. Needs release builds:
#   cargo build --release -p faultline-agent -p faultline-collector
# Usage: scripts/bench-agent-footprint.sh [DURATION_SECONDS] [RUNS]
#   AGENT_BIN=path      the agent binary to measure (default target/release/faultline-agent)
#   COLLECTOR_BIN=path  the collector it pushes to (default target/release/faultline-collector)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
runs=${2:-3}
agent_bin=${AGENT_BIN:-target/release/faultline-agent}
missing=()
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
[ -x /usr/sbin/snmpd ] || missing+=(snmpd)
if [ "${#missing[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -s "$work/agent.log" ] && head -30 "$work/agent.log" >&2; rm -rf "$work"' EXIT
tick=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

sport=$(free_udp_port)
mkdir -p "$work/snmpd/persist"
cat > "$work/snmpd/snmpd.conf" <<CONF
agentAddress udp:127.0.0.1:$sport
master no
rocommunity public 127.0.0.1
createUser bench SHA-256 "bench-auth-pass" AES "bench-priv-pass"
rouser bench priv
CONF
MIBS="" SNMPCONFPATH="$work/snmpd:$work/snmpd/persist" SNMP_PERSISTENT_DIR="$work/snmpd/persist" \
  /usr/sbin/snmpd -f -Lf "$work/snmpd.log" &

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
RUST_LOG=warn "${COLLECTOR_BIN:-target/release/faultline-collector}" run --config "$work/collector.toml" 2>"$work/collector.log" &
nport=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$nport" 2>"$work/node.log" &
node=$!
sleep 1

printf '%-4s %16s %22s %12s %14s %20s\n' run "agent RSS (KiB)" "agent CPU ms/collect" "agent series" "node RSS (KiB)" "node CPU ms/collect"
results="$work/results"
for run in $(seq 1 "$runs"); do
  rm -rf "$work/outbox"
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

[[snmp.devices]]
id = "bench-v2c"
address = "127.0.0.1:$sport"
version = "v2c"
profiles = ["if-mib", "ucd-snmp", "host-resources"]
interval = "1s"
timeout = "400ms"
retries = 1

[[snmp.devices]]
id = "bench-v3"
address = "127.0.0.1:$sport"
version = "v3"
profiles = ["if-mib"]
interval = "1s"
timeout = "400ms"
retries = 1
[snmp.devices.v3]
user = "bench"
level = "auth_priv"
auth_protocol = "sha256"
auth_password = "bench-auth-pass"
priv_protocol = "aes128"
priv_password = "bench-priv-pass"
TOML
  RUST_LOG=warn "$agent_bin" run --config "$work/agent.toml" 2>"$work/agent.log" &
  agent=$!
  sleep 2
  a0=$(cpu_ticks $agent); n0=$(cpu_ticks $node)
  for _ in $(seq 1 "$duration"); do
    curl -fsS "http://127.0.0.1:$nport/metrics" -o /dev/null
    sleep 1
  done
  a1=$(cpu_ticks $agent); n1=$(cpu_ticks $node)
  arss=$(rss_kib $agent); nrss=$(rss_kib $node)
  # SMAPS=1 also prints where the agent's resident memory is (smaps_rollup, largest mappings).
  [ -n "${SMAPS:-}" ] && { grep -E "^(Rss|Anonymous|Private_Clean|Private_Dirty|Shared_Clean)" /proc/$agent/smaps_rollup; awk '/^[0-9a-f]+-/ {name=$6} /^Rss:/ && $2 > 256 {print $2, name}' /proc/$agent/smaps | sort -rn | head -12; } >&2
  series=$(curl -fsS "http://127.0.0.1:$cport/metrics" | grep -Ec '^faultline_(host|snmp)_' || true)
  kill $agent; wait $agent 2>/dev/null || true
  awk -v run="$run" -v d="$duration" -v t="$tick" -v a="$((a1 - a0))" -v n="$((n1 - n0))" \
      -v ar="$arss" -v nr="$nrss" -v s="$series" \
      'BEGIN { printf "%-4s %16d %22.2f %12d %14d %20.2f\n", run, ar, a/t/d*1000, s, nr, n/t/d*1000 }' |
    tee -a "$results"
done
summary() { # column title
  awk -v c="$1" '{ print $c }' "$results" | sort -g |
    awk -v title="$2" '{ v[NR] = $1 } END { printf "%-22s min %10.2f  median %10.2f  max %10.2f\n", title, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
summary 2 "agent RSS (KiB)"
summary 3 "agent CPU ms/collect"
summary 5 "node RSS (KiB)"
summary 6 "node CPU ms/collect"
echo "agent binary: $agent_bin ($(stat -c %s "$agent_bin") bytes); $duration collections per run, CLK_TCK=$tick"
