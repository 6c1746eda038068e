#!/usr/bin/env bash
# Faultline's story in one command: a small simulated machine room, watched by a local agent and
# a collector on embedded defaults (state under .demo/), and three faults injected one after
# another until each has its ticket, its page and its resolution. Then it keeps running until
# Ctrl-C (FAULTLINE_DEMO_ONCE=1: exit after the story, for tests).
#
# The room (tests/src/bin/demo_room.rs): snmpsim serving recordings of real devices — an edge
# router with a China Telecom circuit on its port1, a Palo Alto firewall, a UPS, a Geist
# environmental monitor, the finance department's two VMs — and net-snmp snmpd as their hypervisor;
# this host itself; a mosquitto broker with a Zigbee2MQTT-style sensor. A local PagerDuty-style
# receiver stands in for the pager and an SMTP sink for the customers' mailboxes; the room prints
# each page and e-mail as it arrives.
#
# Ports: FAULTLINE_PORT (collector, 9410), FAULTLINE_DEMO_MQTT_PORT (11883). Binaries: the release
# build when there is one, else the debug build; FAULTLINE_DEMO_BIN_DIR names a built directory
# and skips building.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${FAULTLINE_PORT:-9410}
state=${FAULTLINE_DEMO_DIR:-$PWD/.demo}
mqtt_port=${FAULTLINE_DEMO_MQTT_PORT:-11883}
once=${FAULTLINE_DEMO_ONCE:-0}
started=$(date +%s)
mkdir -p "$state"
# A fresh story each run: tickets, outbox and the room's records start empty.
rm -rf "$state/room" "$state/outbox" "$state"/collector.db* "$state"/tickets.db*

say() { printf '[%s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - started))" "$*"; }

if { [ ! -x /usr/sbin/snmpd ] || [ ! -x /usr/bin/snmpset ] || [ ! -x /usr/sbin/mosquitto ]; } && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends snmpd snmp mosquitto mosquitto-clients >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends snmpd snmp mosquitto mosquitto-clients >/dev/null; }
fi
# snmpsim and the device recordings (a Python venv), installed once.
bash scripts/snmp-peers.sh >/dev/null

if [ -n "${FAULTLINE_DEMO_BIN_DIR:-}" ]; then
  bin=$FAULTLINE_DEMO_BIN_DIR
elif [ -x target/release/faultline-collector ] && [ -x target/release/demo_room ]; then
  cargo build --release --bins --quiet
  bin=target/release
else
  say "building the binaries (the first build takes several minutes on 2 cores; later runs start in seconds)"
  cargo build --bins --quiet
  bin=target/debug
fi

token_file="$state/token"
[ -s "$token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"
api_token_file="$state/api-token"
[ -s "$api_token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$api_token_file"
ack_key_file="$state/ack-link.key"
finance_token_file="$state/finance-token"
[ -s "$finance_token_file" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$finance_token_file"
[ -s "$ack_key_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$ack_key_file"
host=$(hostname)
api="http://127.0.0.1:$port/api/v1"

pids=()
stop() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
}
trap stop EXIT
trap 'exit 130' INT TERM

say "starting the machine room (snmpsim indexes the device recordings; ~20 s the first time)"
mkdir -p "$state/room"
"$bin/demo_room" "$state/room" 2>"$state/room.log" &
pids+=($!)
for _ in $(seq 1 180); do
  [ -s "$state/room/room.env" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the room failed to start:"; tail -20 "$state/room.log"; exit 1; }
  sleep 0.5
done
[ -s "$state/room/room.env" ] || { echo "the room did not start in 90 s:"; tail -20 "$state/room.log"; exit 1; }
# SNMPSIM_PORT, HYPERVISOR_PORT, PAGER_URL, SMTP_PORT
# shellcheck disable=SC1091
. "$state/room/room.env"

# Who owns what: the platform's room, the carrier's circuit, the finance department's VMs.
cat > "$state/inventory.toml" <<TOML
[[sites]]
id = "dc1"

[[rooms]]
id = "hall-a"
site = "dc1"

[[departments]]
id = "finance"
name = "Finance Bureau"
contacts = [{ name = "Li Wei", email = "li.wei@finance.example" }]

[[targets]]
id = "edge-r1"
kind = "device"
role = "router"
room = "hall-a"
owner = "platform"

[[targets]]
id = "edge-r1-wan1"
kind = "interface"
role = "interface"
room = "hall-a"
owner = "platform"
device = "edge-r1"
ifname = "port1"
labels = { link_role = "carrier" }
depends_on = ["edge-r1"]

[[circuits]]
id = "ct-0042"
carrier = "China Telecom"
circuit_id = "GZ-MSTP-0042"
a_end = "edge-r1-wan1"
z_end = "China Telecom Tianhe POP"

[[targets]]
id = "fw-a1"
kind = "device"
role = "firewall"
room = "hall-a"
owner = "platform"
depends_on = ["edge-r1"]

[[targets]]
id = "ups-a1"
kind = "device"
role = "ups"
room = "hall-a"
owner = "platform"

[[targets]]
id = "env-a1"
kind = "sensor"
role = "environment_sensor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "env-mqtt-1"
kind = "sensor"
role = "environment_sensor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "hv-1"
kind = "device"
role = "hypervisor"
room = "hall-a"
owner = "platform"

[[targets]]
id = "fin-vm1"
kind = "device"
role = "vm"
room = "hall-a"
owner = "customer"
department = "finance"
depends_on = ["hv-1"]

[[targets]]
id = "fin-vm2"
kind = "device"
role = "vm"
room = "hall-a"
owner = "customer"
department = "finance"
depends_on = ["hv-1"]

[[targets]]
id = "$host"
kind = "host"
role = "host"
room = "hall-a"
owner = "platform"
TOML

# The built-in rules with their \`for\` durations made seconds (a demo cannot wait minutes), plus a
# disk rule for SNMP-polled servers (HOST-RESOURCES-MIB storage).
awk '/^name = /{rule=$0} /^for = /{ if (rule !~ /"AgentSilent"/) sub(/m"/, "s\"") } {print}' \
  incidents/rules/default.toml > "$state/rules.toml"
cat >> "$state/rules.toml" <<'TOML'

[[rules]]
name = "StorageFull"
metric = "faultline_snmp_host_storage_used_bytes"
divide_by = "faultline_snmp_host_storage_size_bytes"
match = ['storage_descr=~"^/"']
condition = "above"
threshold = 0.95
clear = 0.90
for = "5s"
severity = "P2"
summary = "{{ target }} {{ labels.storage_descr }} is {{ value_pct }} % full"
description = "A filesystem above 95 % used; clears below 90 %."
TOML

# Who is on call: Ana, around the clock.
cat > "$state/oncall.toml" <<'TOML'
[[people]]
id = "ana"
name = "Ana Berg"
email = "ana@faultline.example"
phone = "+8613800000000"

[[schedules]]
id = "primary"
time_zone = "UTC"
rotation = "daily"
handoff = "09:00"
start = "2020-01-06"
participants = ["ana"]

[[escalations]]
id = "ops"
levels = [{ schedule = "primary", after = "0s" }]
TOML

cat > "$state/collector.toml" <<TOML
[listen]
address = "127.0.0.1:$port"

[storage]
path = "$state/collector.db"

[[agents]]
id = "demo-agent"
token_file = "$token_file"

[incidents]
inventory_file = "$state/inventory.toml"
rule_files = ["$state/rules.toml"]
oncall_file = "$state/oncall.toml"

# Every page goes to whoever is on call in the "ops" escalation policy.
[incidents.escalation]
default = "ops"

# Demo timings: a customer progress update every minute, call-back an hour after resolution.
[incidents.tickets]
ack_timeout = "10m"
progress_interval = "60s"
callback_after = "1h"

# Pages carry a signed link that acknowledges the ticket as the paged engineer.
[api]
ack_link_key_file = "$ack_key_file"
public_url = "http://127.0.0.1:$port"

[[api.tokens]]
name = "demo-admin"
role = "admin"
token_file = "$api_token_file"

# The finance department's read-only console login: its own tickets and updates only.
[[api.departments]]
department = "finance"
token_file = "$finance_token_file"

[notify.retry]
initial = "1s"
max = "5s"
poll_interval = "500ms"

# The on-call pager: PagerDuty Events v2, here a local receiver.
[[notify.channels]]
name = "pager"
[notify.channels.pagerduty]
routing_key = "demo-routing-key-0000000000000000"
url = "$PAGER_URL"

# Customer e-mail (plain language, no internal reasons) to the affected departments' contacts.
[[notify.channels]]
name = "customer-mail"
[notify.channels.email]
host = "127.0.0.1"
port = $SMTP_PORT
tls = "none"
from = "Faultline NOC <noc@faultline.example>"
TOML

cat > "$state/agent.toml" <<TOML
[agent]
id = "demo-agent"
site = "dc1"
room = "hall-a"

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
TOML
for device in edge-r1 fw-a1 ups-a1 env-a1 fin-vm1 fin-vm2; do
  profiles=""
  # The UPS reports its vendor's sysObjectID: name the standard UPS-MIB profile.
  [ "$device" = ups-a1 ] && profiles='profiles = ["ups-mib", "if-mib"]'
  cat >> "$state/agent.toml" <<TOML

[[snmp.devices]]
id = "$device"
address = "127.0.0.1:$SNMPSIM_PORT"
community = "$device"
interval = "4s"
timeout = "1500ms"
retries = 1
$profiles
TOML
done
cat >> "$state/agent.toml" <<TOML

[[snmp.devices]]
id = "hv-1"
address = "127.0.0.1:$HYPERVISOR_PORT"
community = "public"
interval = "5s"
timeout = "1s"
retries = 1
profiles = ["if-mib", "ucd-snmp"]
TOML

mqtt_note="  MQTT:      mosquitto not installed (run as root, or apt-get install mosquitto mosquitto-clients)"
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
      mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -t zigbee2mqtt/env-mqtt-1 \
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
  mqtt_note="  MQTT:      mosquitto on 127.0.0.1:$mqtt_port; sensor env-mqtt-1 publishes to zigbee2mqtt/env-mqtt-1"
fi

declare -A daemons
"$bin/faultline-collector" run --config "$state/collector.toml" 2>"$state/collector.log" &
pids+=($!)
daemons[collector]=$!
"$bin/faultline-agent" run --config "$state/agent.toml" 2>"$state/agent.log" &
pids+=($!)
daemons[agent]=$!
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 1
for i in "${!daemons[@]}"; do
  kill -0 "${daemons[$i]}" 2>/dev/null || { echo "faultline-$i exited:"; head -5 "$state/$i.log"; exit 1; }
done
token=$(cat "$api_token_file")
cat <<MSG
Faultline is running.
  console:   http://127.0.0.1:$port/console
             log in as the on-call desk with $token
             or as the finance department (read-only) with $(cat "$finance_token_file")
  tickets:   curl -s -H "Authorization: Bearer $token" $api/tickets
  metrics:   http://127.0.0.1:$port/metrics
  logs:      $state/collector.log, $state/agent.log, $state/room.log
  configs:   $state/collector.toml, $state/agent.toml, $state/inventory.toml, $state/rules.toml
  room:      snmpsim on udp 127.0.0.1:$SNMPSIM_PORT serving edge-r1 (China Telecom circuit ct-0042
             on port1), fw-a1 (Palo Alto), ups-a1, env-a1 (Geist), fin-vm1 and fin-vm2 (finance
             department VMs); hv-1 (net-snmp snmpd) on udp 127.0.0.1:$HYPERVISOR_PORT; this host ($host)
$mqtt_note
  pager:     $PAGER_URL (PagerDuty Events v2 stand-in); customer mail: SMTP 127.0.0.1:$SMTP_PORT
Pages (📟) and e-mails (✉) are printed below as they arrive.
MSG

# --- The story ----------------------------------------------------------------------------------

call() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
# SNMP SET on a recorded device: community (= target id), OID, type letter, value.
inject() {
  MIBS="" SNMP_PERSISTENT_DIR="$state/snmp-client" \
    snmpset -v2c -c "$1" -t 2 -r 1 "127.0.0.1:$SNMPSIM_PORT" "$2" "$3" "$4" >/dev/null
}
mkdir -p "$state/snmp-client/cert_indexes"
# A breath between the acts, to look at the console (FAULTLINE_DEMO_PAUSE seconds, default 15).
pause() { sleep "${FAULTLINE_DEMO_PAUSE:-15}"; }
# Waits up to $2 seconds until `$3...` succeeds; fails the demo with what it waited for.
wait_for() {
  local what=$1 limit=$2
  shift 2
  for _ in $(seq 1 "$limit"); do
    "$@" && return 0
    sleep 1
  done
  say "gave up after ${limit}s waiting for $what; see $state/collector.log and $state/agent.log"
  return 1
}
# The newest ticket of rule $1 as `id state tag`, empty when there is none.
ticket_of() {
  call "$api/tickets" 2>/dev/null |
    jq -r --arg rule "$1" '[.tickets[] | select(.rule == $rule)] | first // empty | "\(.id) \(.state) \(.tag)"'
}
ticket_open() { [ -n "$(ticket_of "$1")" ]; }
ticket_resolved() { case "$(ticket_of "$1")" in *" resolved "* | *" closed "*) true ;; *) false ;; esac; }
# Prints a ticket's tag, reason and evidence chain.
show_ticket() {
  call "$api/tickets" | jq -r --arg rule "$1" '[.tickets[] | select(.rule == $rule)] | first |
    "      ticket #\(.id) [\(.tag)] \(.severity) \(.summary)\n      why \(.tag): \(.reason)"'
}
# (Not `curl | grep -q`: grep's early exit would fail the pipe under pipefail.)
metric_seen() {
  local text
  text=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null) && grep -q "$1" <<<"$text"
}
customer_mails() { grep -c "$1" "$state/room/mail.jsonl" 2>/dev/null || true; }
progress_mailed() { [ "$(customer_mails 'li.wei@finance.example')" -ge 2 ]; }

WAN_OPER_STATUS=1.3.6.1.2.1.2.2.1.8.2
GEIST_TEMP=1.3.6.1.4.1.21239.5.1.2.1.5.1
VM_ROOT_USED=1.3.6.1.2.1.25.2.3.1.6.31   # 4 KiB units of a 2164327-unit root filesystem

say "waiting for the first polls of every device to reach the collector"
wait_for "first polls" 90 metric_seen 'faultline_snmp_host_storage_used_bytes{.*target="fin-vm1"'
wait_for "first polls" 60 metric_seen 'faultline_snmp_env_temperature_celsius{.*target="env-a1"'
wait_for "first polls" 60 metric_seen 'faultline_snmp_if_oper_status{.*target="edge-r1-wan1"'
sleep 5

say "1/3 injecting a carrier circuit loss: edge-r1 port1 (China Telecom GZ-MSTP-0042) goes down → expect a carrier ticket"
inject edge-r1 "$WAN_OPER_STATUS" i 2
wait_for "the carrier ticket" 60 ticket_open CarrierLinkLoss
show_ticket CarrierLinkLoss
carrier=$(ticket_of CarrierLinkLoss | cut -d' ' -f1)
ack_url=$(jq -r --argjson id "$carrier" 'select(.event_action == "trigger" and .payload.custom_details.ticket == $id)
  | .links[]? | select(.text == "Acknowledge in Faultline") | .href' "$state/room/pager.jsonl" | head -1)
if [ -n "$ack_url" ]; then
  say "the on-call engineer taps the acknowledge link in the page"
  curl -fsS "$ack_url" | jq -r '"      " + .message'
fi
pause

say "2/3 injecting a room temperature rise: env-a1 (hall-a) climbs from 22 °C to 33 °C → expect a platform ticket"
for tenths in 260 290 310 330; do
  inject env-a1 "$GEIST_TEMP" i "$tenths"
  sleep 3
done
wait_for "the room temperature ticket" 60 ticket_open RoomTemperatureHigh
show_ticket RoomTemperatureHigh
pause

say "3/3 injecting a customer disk filling: fin-vm1 (finance) / climbs from 77 % to 99 % → expect a customer ticket"
for used in 1850000 1990000 2080000 2140000; do
  inject fin-vm1 "$VM_ROOT_USED" i "$used"
  sleep 3
done
wait_for "the customer ticket" 60 ticket_open StorageFull
show_ticket StorageFull
pause

id=$(ticket_of StorageFull | cut -d' ' -f1)
say "the engineer posts a progress update for the finance department on ticket #$id"
call -X POST "$api/tickets/$id/progress" \
  -d '{"text":"We are removing old log archives from fin-vm1 and extending its disk; next update within the hour."}' >/dev/null
wait_for "the customer progress e-mail" 30 progress_mailed
pause

say "undoing the faults: the carrier restores the circuit, cooling recovers, the old logs are removed"
inject edge-r1 "$WAN_OPER_STATUS" i 1
inject env-a1 "$GEIST_TEMP" i 225
inject fin-vm1 "$VM_ROOT_USED" i 1667935
for rule in CarrierLinkLoss RoomTemperatureHigh StorageFull; do
  wait_for "the $rule ticket to resolve" 90 ticket_resolved "$rule"
done
sleep 3
call "$api/tickets" > "$state/story.json"
say "the story is told: three tickets, carrier / platform / customer, each paged once and resolved:"
jq -r '.tickets[] | "      #\(.id) [\(.tag)] \(.rule) on \(.target): \(.state)"' "$state/story.json"

if [ "$once" = 1 ]; then
  exit 0
fi
say "the room keeps running: open the console, or inject again with snmpset (see scripts/demo.sh). Press Ctrl-C to stop."
wait
