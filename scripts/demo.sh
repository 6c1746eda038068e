#!/usr/bin/env bash
# Runs Faultline's main job on this machine: a collector and a local agent on embedded defaults
# (SQLite state under .demo/, this host's metrics, a local net-snmp snmpd on 127.0.0.1 standing
# in for a machine-room device, polled over SNMPv2c and v3, a local mosquitto with a simulated
# Zigbee2MQTT temperature/humidity sensor, and ICMP/TCP/HTTP path probes), until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${FAULTLINE_PORT:-9410}
state=${FAULTLINE_DEMO_DIR:-$PWD/.demo}
mkdir -p "$state"
snmp_port=${FAULTLINE_DEMO_SNMP_PORT:-16161}
mqtt_port=${FAULTLINE_DEMO_MQTT_PORT:-11883}
if { [ ! -x /usr/sbin/snmpd ] || [ ! -x /usr/sbin/mosquitto ]; } && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends snmpd mosquitto mosquitto-clients >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends snmpd mosquitto mosquitto-clients >/dev/null; }
fi
cargo build --bins --quiet

token_file="$state/token"
[ -s "$token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"
api_token_file="$state/api-token"
[ -s "$api_token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$api_token_file"
host=$(hostname)

# Who owns what: this host and the local "switch" are platform equipment in one demo room.
cat > "$state/inventory.toml" <<TOML
[[sites]]
id = "demo-site"

[[rooms]]
id = "demo-room"
site = "demo-site"

[[targets]]
id = "demo-switch"
kind = "device"
room = "demo-room"
owner = "platform"

[[targets]]
id = "demo-switch-v3"
kind = "device"
room = "demo-room"
owner = "platform"

[[targets]]
id = "$host"
kind = "host"
room = "demo-room"
owner = "platform"
depends_on = ["demo-switch"]

[[targets]]
id = "demo-th-1"
kind = "sensor"
room = "demo-room"
owner = "platform"

[[targets]]
id = "demo-collector-http"
kind = "service"
room = "demo-room"
owner = "platform"
depends_on = ["$host"]
TOML

cat > "$state/collector.toml" <<TOML
[listen]
address = "127.0.0.1:$port"

[storage]
path = "$state/collector.db"

[[agents]]
id = "demo-agent"
token_file = "$token_file"

# Built-in machine-room rules, tickets in $state/tickets.db.
[incidents]
inventory_file = "$state/inventory.toml"

[[api.tokens]]
name = "demo-admin"
role = "admin"
token_file = "$api_token_file"
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

# Path probes: this host's own stack stands in for a carrier hand-off and a customer service.
[[probes]]
id = "demo-loopback"
kind = "icmp"
address = "127.0.0.1"
interval = "10s"

[[probes]]
id = "demo-collector-http"
kind = "http"
address = "http://127.0.0.1:$port/healthz"
count = 1
interval = "10s"
TOML

pids=()
if [ -x /usr/sbin/snmpd ]; then
  mkdir -p "$state/snmpd/persist"
  cat > "$state/snmpd/snmpd.conf" <<CONF
agentAddress udp:127.0.0.1:$snmp_port
master no
rocommunity public 127.0.0.1
createUser demo SHA-256 "demo-auth-pass" AES "demo-priv-pass"
rouser demo priv
CONF
  MIBS="" SNMPCONFPATH="$state/snmpd:$state/snmpd/persist" SNMP_PERSISTENT_DIR="$state/snmpd/persist" \
    /usr/sbin/snmpd -f -Lf "$state/snmpd.log" &
  pids+=($!)
  sleep 1   # let snmpd bind before the agent's first poll
  cat >> "$state/agent.toml" <<TOML

[[snmp.devices]]
id = "demo-switch"
address = "127.0.0.1:$snmp_port"
version = "v2c"
profiles = ["if-mib", "ucd-snmp", "host-resources"]
interval = "10s"

[[snmp.devices]]
id = "demo-switch-v3"
address = "127.0.0.1:$snmp_port"
version = "v3"
profiles = ["if-mib"]
interval = "10s"
[snmp.devices.v3]
user = "demo"
level = "auth_priv"
auth_protocol = "sha256"
auth_password = "demo-auth-pass"
priv_protocol = "aes128"
priv_password = "demo-priv-pass"
TOML
  snmp_note="  SNMP:      local snmpd on udp 127.0.0.1:$snmp_port polled as demo-switch (v2c) and demo-switch-v3 (v3)"
else
  snmp_note="  SNMP:      snmpd not installed (run as root, or apt-get install snmpd) — polling this host only"
fi

if [ -x /usr/sbin/mosquitto ] && command -v mosquitto_pub >/dev/null; then
  mkdir -p "$state/mosquitto"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mqtt_port" > "$state/mosquitto/mosquitto.conf"
  [ "$(id -u)" -eq 0 ] && echo "user root" >> "$state/mosquitto/mosquitto.conf"
  /usr/sbin/mosquitto -c "$state/mosquitto/mosquitto.conf" 2>"$state/mosquitto.log" &
  pids+=($!)
  # A Zigbee2MQTT-style temperature/humidity sensor publishing every 5 s, drifting a little.
  (
    i=0
    while sleep 5; do
      i=$(( (i + 1) % 20 ))
      mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -t zigbee2mqtt/demo-th-1 \
        -m "{\"temperature\":$((22 + i / 10)).$((i % 10)),\"humidity\":4$((i % 10)),\"linkquality\":96}" 2>/dev/null || true
    done
  ) &
  pids+=($!)
  cat >> "$state/agent.toml" <<TOML

[[mqtt]]
id = "demo-broker"
stale_after = "1m"
[mqtt.broker]
address = "127.0.0.1:$mqtt_port"

[[mqtt.topics]]
topic = "zigbee2mqtt/{sensor}"
target = "{sensor}"
values = [
  { field = "temperature", metric = "faultline_sensor_temperature_celsius" },
  { field = "humidity", metric = "faultline_sensor_humidity_percent" },
]
TOML
  mqtt_note="  MQTT:      local mosquitto on 127.0.0.1:$mqtt_port; sensor demo-th-1 publishes to zigbee2mqtt/demo-th-1"
else
  mqtt_note="  MQTT:      mosquitto not installed (run as root, or apt-get install mosquitto mosquitto-clients)"
fi

./target/debug/faultline-collector run --config "$state/collector.toml" 2>"$state/collector.log" &
pids+=($!)
./target/debug/faultline-agent run --config "$state/agent.toml" 2>"$state/agent.log" &
pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat <<MSG
Faultline is running.
  metrics:   http://127.0.0.1:$port/metrics    (try: curl -s http://127.0.0.1:$port/metrics | grep faultline_host_cpu)
  health:    http://127.0.0.1:$port/healthz
  tickets:   curl -s -H "Authorization: Bearer \$(cat $api_token_file)" http://127.0.0.1:$port/api/v1/tickets
  logs:      $state/collector.log, $state/agent.log
  configs:   $state/collector.toml, $state/agent.toml
$snmp_note
$mqtt_note
  probes:    ICMP 127.0.0.1 (demo-loopback), HTTP /healthz (demo-collector-http): grep faultline_probe_
Press Ctrl-C to stop.
MSG
wait
