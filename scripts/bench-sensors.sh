#!/usr/bin/env bash
# Benchmarks of the sensor sources, each beside a peer doing the same work in the same run:
#   mqtt    MQTT messages the agent maps (Zigbee2MQTT-style JSON, 2 values each) per CPU second
#           and per wall second, beside `mosquitto_sub` receiving the same messages to /dev/null;
#   probes  CPU and memory of 1,000 ICMP probes (127.0.0.0/8, one echo each every 5 s) beside
#           Debian's prometheus-blackbox-exporter probing the same targets, driven by Prometheus;
#   modbus  Modbus TCP registers read against pymodbus' server (10 devices × 40 holding registers
#           every 100 ms): registers/s and agent CPU per 1,000 registers, beside pymodbus' own
#           client reading the same 40 registers in a loop (CPU per 1,000 registers);
#   rss     agent resident memory with every source on (host, MQTT, Modbus against pymodbus,
#           ICMP/TCP/HTTP probes) after 30 s.
# Each figure is run RUNS times (default 3); min/median/max are printed. Needs release builds:
#   cargo build --release -p faultline-agent -p faultline-collector
# Usage: scripts/bench-sensors.sh [mqtt|probes|modbus|rss|all] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
runs=${2:-3}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
tick=$(getconf CLK_TCK)
venv=${FAULTLINE_VENV:-$HOME/.cache/faultline/venv}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# min/median/max of the numbers on stdin, one per line.
stats() { sort -g | awk '{v[NR]=$1} END {printf "min %s  median %s  max %s\n", v[1], v[int((NR+1)/2)], v[NR]}'; }
scrape() { curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null || true; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

token=bench-token-0123456789abcdef
start_collector() { # dir port
  cat > "$1/collector.toml" <<TOML
[listen]
address = "127.0.0.1:$2"
[storage]
path = "$1/state.db"
[ingest]
max_series_per_agent = 200000
[[agents]]
id = "bench"
token = "$token"
TOML
  RUST_LOG=warn target/release/faultline-collector run --config "$1/collector.toml" 2>"$1/collector.log" &
  collector=$!
  pids+=("$collector")
  for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
}
agent_head() { # dir port
  printf '[agent]\nid = "bench"\n[push]\nurl = "http://127.0.0.1:%s"\ntoken = "%s"\n[outbox]\ndir = "%s/outbox"\nfsync = false\n' "$2" "$token" "$1"
}
start_mosquitto() { # dir port
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n' "$2" > "$1/mosquitto.conf"
  [ "$(id -u)" -eq 0 ] && echo "user root" >> "$1/mosquitto.conf"
  /usr/sbin/mosquitto -c "$1/mosquitto.conf" 2>"$1/mosquitto.log" &
  mosquitto=$!
  pids+=("$mosquitto")
  sleep 0.5
}

bench_mqtt() {
  local n_per=50000 publishers=4
  local total=$((n_per * publishers))
  python3 - "$work/payloads" "$n_per" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"temperature":%.1f,"humidity":%d,"linkquality":96}\n' % (20 + i % 100 / 10, 40 + i % 20))
PY
  : > "$work/mqtt-agent"; : > "$work/mqtt-agent-wall"; : > "$work/mqtt-sub"
  for run in $(seq 1 "$runs"); do
    local dir="$work/mqtt-$run"; mkdir -p "$dir"
    local cport mport; cport=$(free_port); mport=$(free_port)
    start_mosquitto "$dir" "$mport"
    start_collector "$dir" "$cport"
    { agent_head "$dir" "$cport"; cat <<TOML
[host]
enabled = false
[batch]
max_samples = 20000
[[mqtt]]
id = "bench-broker"
health_interval = "200ms"
[mqtt.broker]
address = "127.0.0.1:$mport"
[[mqtt.topics]]
topic = "bench/{sensor}"
target = "{sensor}"
values = [
  { field = "temperature", metric = "faultline_sensor_temperature_celsius" },
  { field = "humidity", metric = "faultline_sensor_humidity_percent" },
]
TOML
    } > "$dir/agent.toml"
    RUST_LOG=warn target/release/faultline-agent run --config "$dir/agent.toml" 2>"$dir/agent.log" &
    local agent=$!; pids+=("$agent")
    sleep 1.5
    # The peer: mosquitto_sub receiving the same messages (no mapping), its CPU time measured.
    python3 -c 'import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); r=resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime+r.ru_stime)' \
      mosquitto_sub -h 127.0.0.1 -p "$mport" -t 'bench/#' -C "$total" > "$dir/sub-cpu" &
    local sub=$!
    sleep 0.5
    local a0 t0; a0=$(cpu_ticks "$agent"); t0=$(date +%s.%N)
    for p in $(seq 1 "$publishers"); do
      mosquitto_pub -h 127.0.0.1 -p "$mport" -t "bench/s$p" -l < "$work/payloads" &
    done
    local got=0
    for _ in $(seq 1 600); do
      got=$(scrape "$cport" | awk '/^faultline_mqtt_messages_total/ {print $2; exit}')
      [ "${got%.*}" -ge "$total" ] 2>/dev/null && break
      sleep 0.1
    done
    local t1 a1; t1=$(date +%s.%N); a1=$(cpu_ticks "$agent")
    wait "$sub" || true
    if [ "${got%.*}" -lt "$total" ] 2>/dev/null; then echo "run $run: agent saw only $got of $total messages" >&2; fi
    awk -v n="$total" -v c="$((a1 - a0))" -v t="$tick" 'BEGIN {printf "%.0f\n", n / (c / t)}' >> "$work/mqtt-agent"
    awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f\n", n / (b - a)}' >> "$work/mqtt-agent-wall"
    awk -v n="$total" '{printf "%.0f\n", n / $1}' "$dir/sub-cpu" >> "$work/mqtt-sub"
    stop "$agent"; stop "$collector"; stop "$mosquitto"
  done
  echo "MQTT: $total messages (4 topics), Zigbee2MQTT JSON, 2 values each, $runs runs"
  echo "  agent, messages per CPU second (mapped, batched, pushed):  $(stats < "$work/mqtt-agent")"
  echo "  agent, messages per wall second (publish → counted):       $(stats < "$work/mqtt-agent-wall")"
  echo "  mosquitto_sub -C N > /dev/null, messages per CPU second:   $(stats < "$work/mqtt-sub")"
}

bench_probes() {
  local targets=1000 duration=30
  command -v prometheus-blackbox-exporter >/dev/null && command -v prometheus >/dev/null || {
    echo "probes: needs prometheus-blackbox-exporter and prometheus (scripts/install-test-deps.sh)" >&2; return 1; }
  local list; list=$(python3 -c "print(' '.join('127.0.%d.%d' % (1 + i // 250, 1 + i % 250) for i in range($targets)))")
  : > "$work/p-agent-cpu"; : > "$work/p-agent-rss"; : > "$work/p-bb-cpu"; : > "$work/p-bb-rss"
  for run in $(seq 1 "$runs"); do
    local dir="$work/probes-$run"; mkdir -p "$dir"
    local cport; cport=$(free_port)
    start_collector "$dir" "$cport"
    { agent_head "$dir" "$cport"; printf '[host]\nenabled = false\n'
      for ip in $list; do printf '[[probes]]\nid = "%s"\nkind = "icmp"\naddress = "%s"\ncount = 1\ninterval = "5s"\ntimeout = "1s"\n' "p-$ip" "$ip"; done
    } > "$dir/agent.toml"
    RUST_LOG=warn target/release/faultline-agent run --config "$dir/agent.toml" 2>"$dir/agent.log" &
    local agent=$!; pids+=("$agent")
    sleep 2
    local a0; a0=$(cpu_ticks "$agent"); sleep "$duration"; local a1; a1=$(cpu_ticks "$agent")
    echo "$(( (a1 - a0) * 1000 / tick ))" >> "$work/p-agent-cpu"
    rss_kib "$agent" >> "$work/p-agent-rss"
    stop "$agent"; stop "$collector"

    # The peer: blackbox exporter, scraped by Prometheus for the same targets every 5 s.
    local bport pport; bport=$(free_port); pport=$(free_port)
    printf 'modules:\n  icmp:\n    prober: icmp\n    timeout: 1s\n    icmp:\n      preferred_ip_protocol: ip4\n' > "$dir/blackbox.yml"
    prometheus-blackbox-exporter --config.file="$dir/blackbox.yml" --web.listen-address="127.0.0.1:$bport" 2>"$dir/blackbox.log" &
    local bb=$!; pids+=("$bb")
    { printf 'global:\n  scrape_interval: 5s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params: {module: [icmp]}\n    static_configs:\n      - targets:\n'
      for ip in $list; do printf '        - %s\n' "$ip"; done
      printf '    relabel_configs:\n      - {source_labels: [__address__], target_label: __param_target}\n      - {source_labels: [__param_target], target_label: instance}\n      - {target_label: __address__, replacement: "127.0.0.1:%s"}\n' "$bport"
    } > "$dir/prometheus.yml"
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" --web.listen-address="127.0.0.1:$pport" 2>"$dir/prometheus.log" &
    local prom=$!; pids+=("$prom")
    sleep 2
    local b0; b0=$(cpu_ticks "$bb"); sleep "$duration"; local b1; b1=$(cpu_ticks "$bb")
    echo "$(( (b1 - b0) * 1000 / tick ))" >> "$work/p-bb-cpu"
    rss_kib "$bb" >> "$work/p-bb-rss"
    stop "$prom"; stop "$bb"
  done
  echo "Probes: $targets ICMP targets on 127.0.0.0/8, one echo each every 5 s, ${duration} s measured, $runs runs"
  echo "  agent CPU ms per ${duration} s:                 $(stats < "$work/p-agent-cpu")"
  echo "  agent RSS KiB:                            $(stats < "$work/p-agent-rss")"
  echo "  blackbox-exporter CPU ms per ${duration} s:     $(stats < "$work/p-bb-cpu")"
  echo "  blackbox-exporter RSS KiB:                $(stats < "$work/p-bb-rss")"
}

bench_modbus() {
  local duration=20 devices=10
  : > "$work/mb-rate"; : > "$work/mb-agent"; : > "$work/mb-peer"
  mkdir -p "$work/maps"
  { echo 'description = "bench: 40 holding registers"'
    for a in $(seq 0 39); do printf '[[registers]]\nmetric = "r%s"\nfunction = "holding"\naddress = %s\ntype = "u16"\n' "$a" "$a"; done
  } > "$work/maps/bench40.toml"
  for run in $(seq 1 "$runs"); do
    local dir="$work/modbus-$run"; mkdir -p "$dir"
    local cport bport; cport=$(free_port); bport=$(free_port)
    start_collector "$dir" "$cport"
    "$venv/bin/python" tests/peers/modbus_server.py "$bport" >"$dir/modbus.log" 2>&1 &
    local server=$!; pids+=("$server")
    sleep 2
    { agent_head "$dir" "$cport"; printf '[host]\nenabled = false\n[modbus]\nmaps_dir = "%s"\n' "$work/maps"
      for d in $(seq 1 "$devices"); do printf '[[modbus.devices]]\nid = "d%s"\naddress = "127.0.0.1:%s"\nmap = "bench40"\ninterval = "100ms"\ntimeout = "100ms"\n' "$d" "$bport"; done
    } > "$dir/agent.toml"
    RUST_LOG=warn target/release/faultline-agent run --config "$dir/agent.toml" 2>"$dir/agent.log" &
    local agent=$!; pids+=("$agent")
    sleep 3
    local count0 a0 count1 a1
    count0=$(scrape "$cport" | awk '/^faultline_collector_samples_total\{outcome="applied"\}/ {print $2}')
    a0=$(cpu_ticks "$agent"); sleep "$duration"; a1=$(cpu_ticks "$agent")
    count1=$(scrape "$cport" | awk '/^faultline_collector_samples_total\{outcome="applied"\}/ {print $2}')
    # Each poll sends 40 values and 2 health samples.
    awk -v a="$count0" -v b="$count1" -v d="$duration" 'BEGIN {printf "%.0f\n", (b - a) * 40 / 42 / d}' >> "$work/mb-rate"
    awk -v a="$count0" -v b="$count1" -v c="$((a1 - a0))" -v t="$tick" 'BEGIN {printf "%.2f\n", c / t * 1000 / ((b - a) * 40 / 42 / 1000)}' >> "$work/mb-agent"
    stop "$agent"
    # The peer: pymodbus' client reading the same 40 registers as fast as it can, for $duration s.
    "$venv/bin/python" - "$bport" "$duration" >> "$work/mb-peer" <<'PY'
import resource, sys, time
from pymodbus.client import ModbusTcpClient
client = ModbusTcpClient("127.0.0.1", port=int(sys.argv[1]))
client.connect()
end = time.monotonic() + float(sys.argv[2])
registers = 0
while time.monotonic() < end:
    registers += len(client.read_holding_registers(0, count=40, device_id=1).registers)
usage = resource.getrusage(resource.RUSAGE_SELF)
print("%.2f" % ((usage.ru_utime + usage.ru_stime) * 1000 / (registers / 1000)))
PY
    stop "$server"; stop "$collector"
  done
  echo "Modbus TCP against pymodbus' server: $devices devices × 40 holding registers every 100 ms, ${duration} s, $runs runs"
  echo "  agent registers/s:                         $(stats < "$work/mb-rate")"
  echo "  agent CPU ms per 1,000 registers:          $(stats < "$work/mb-agent")"
  echo "  pymodbus client CPU ms per 1,000 registers: $(stats < "$work/mb-peer")"
}

bench_rss() {
  : > "$work/rss"
  for run in $(seq 1 "$runs"); do
    local dir="$work/rss-$run"; mkdir -p "$dir"
    local cport mport bport; cport=$(free_port); mport=$(free_port); bport=$(free_port)
    start_mosquitto "$dir" "$mport"
    start_collector "$dir" "$cport"
    "$venv/bin/python" tests/peers/modbus_server.py "$bport" >"$dir/modbus.log" 2>&1 &
    local modbus=$!; pids+=("$modbus")
    sleep 2
    { agent_head "$dir" "$cport"; cat <<TOML
[host]
interval = "1s"
[[mqtt]]
id = "broker"
[mqtt.broker]
address = "127.0.0.1:$mport"
[[mqtt.topics]]
topic = "zigbee2mqtt/{sensor}"
target = "{sensor}"
values = [{ field = "temperature", metric = "faultline_sensor_temperature_celsius" }]
[[modbus.devices]]
id = "th-1"
address = "127.0.0.1:$bport"
map = "xy-md02"
interval = "1s"
timeout = "500ms"
[[probes]]
id = "icmp"
kind = "icmp"
address = "127.0.0.1"
interval = "1s"
[[probes]]
id = "tcp"
kind = "tcp"
address = "127.0.0.1:$cport"
interval = "1s"
[[probes]]
id = "http"
kind = "http"
address = "http://127.0.0.1:$cport/healthz"
interval = "1s"
TOML
    } > "$dir/agent.toml"
    RUST_LOG=warn target/release/faultline-agent run --config "$dir/agent.toml" 2>"$dir/agent.log" &
    local agent=$!; pids+=("$agent")
    for i in $(seq 1 30); do
      mosquitto_pub -h 127.0.0.1 -p "$mport" -t zigbee2mqtt/th-2 -m "{\"temperature\":2$((i % 10))}"
      sleep 1
    done
    rss_kib "$agent" >> "$work/rss"
    stop "$agent"; stop "$modbus"; stop "$collector"; stop "$mosquitto"
  done
  echo "Agent RSS KiB after 30 s with host, MQTT, Modbus TCP and ICMP/TCP/HTTP probes, $runs runs: $(stats < "$work/rss")"
}

case $what in
  mqtt) bench_mqtt ;;
  probes) bench_probes ;;
  modbus) bench_modbus ;;
  rss) bench_rss ;;
  all) bench_mqtt; bench_probes; bench_modbus; bench_rss ;;
  *) echo "usage: $0 [mqtt|probes|modbus|rss|all] [RUNS]" >&2; exit 2 ;;
esac
