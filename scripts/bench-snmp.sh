#!/usr/bin/env bash
# SNMP benchmarks of issue 3, all in one run on 127.0.0.1 (figures go to BENCHMARKS.md):
#   (a) faultline-snmp's walk (examples/walk.rs) of IF-MIB (1.3.6.1.2.1.2 + 1.3.6.1.2.1.31) and of
#       the whole tree of a real net-snmp snmpd, against `snmpbulkwalk -v2c -Cr25` on the same snmpd;
#   (b) the same IF-MIB walk against Debian's prometheus-snmp-exporter scraping that snmpd with a
#       hand-written module `if_mib` (numeric OIDs: no MIB files exist here);
#   (a+b) again on a big interface table (examples/synthetic_agent.rs, 2,000 interfaces), where the
#       walk, not process start-up, dominates;
#   (c) the 1,000-device fleet: examples/fleet.rs polling examples/synthetic_agent.rs (a separate
#       process answering a synthetic IF-MIB of 48 interfaces), wall time, CPU seconds, peak RSS;
#   (d) the 20,000-interface table: the release build of real_peers' test of it (prints the times).
# Every process started here is stopped by its PID at exit.
# Usage: scripts/bench-snmp.sh [RUNS_OF_FLEET] (default 3)
# Env: CARGO_TARGET_DIR (default target), CARGO_BUILD_JOBS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
fleet_runs=${1:-3}
target_dir=${CARGO_TARGET_DIR:-target}
reps=25

need=()
command -v /usr/sbin/snmpd >/dev/null || need+=(snmpd)
command -v snmpbulkwalk >/dev/null || need+=(snmp)
command -v prometheus-snmp-exporter >/dev/null || need+=(prometheus-snmp-exporter)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-snmp: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

echo "== cargo build --release (examples walk, fleet, synthetic_agent)"
cargo build --release -q -j "${CARGO_BUILD_JOBS:-1}" -p faultline-snmp \
  --example walk --example fleet --example synthetic_agent
bin="$target_dir/release/examples"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}

# --- net-snmp snmpd, configured as the tests' harness does (tests/src/snmp_peers.rs) ---
snmp_port=$(free_port SOCK_DGRAM)
mkdir -p "$work/snmpd/persist"
cat > "$work/snmpd/snmpd.conf" <<CONF
agentAddress udp:127.0.0.1:$snmp_port
master no
rocommunity public 127.0.0.1
CONF
MIBS="" SNMPCONFPATH="$work/snmpd:$work/snmpd/persist" SNMP_PERSISTENT_DIR="$work/snmpd/persist" \
  /usr/sbin/snmpd -f -Lf "$work/snmpd/snmpd.log" >/dev/null 2>&1 &
pids+=($!)
agent="127.0.0.1:$snmp_port"
for _ in $(seq 50); do
  MIBS="" snmpget -v2c -c public -t 0.2 -r 0 "$agent" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && break
  sleep 0.1
done
export MIBS=""
snmpd_version=$(/usr/sbin/snmpd -v | awk '/version/ {print $NF; exit}')

# hyperfine without a shell (-N): each command is one process start plus its walk.
# Prints "mean median min" in ms; the machine is shared, so min and median are the steadier figures.
bench() { # NAME COMMAND...
  local name=$1; shift
  hyperfine -N -w 3 -r 30 --export-json "$work/$name.json" --output=null "$*" >/dev/null 2>>"$work/hyperfine.log"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(" ".join("%.1f" % (r[k]*1000) for k in ("mean","median","min")))' "$work/$name.json"
}
count_ours() { "$bin/walk" "$1" public "$2" $reps 1 | awk '{print $1}'; }
count_bulkwalk() { local a=$1 n=0; shift; for root in "$@"; do n=$((n + $(snmpbulkwalk -v2c -c public -Cr$reps -On "$a" "$root" | grep -c '^\.'))); done; echo $n; }
calc() { python3 -c "print('%.2f' % ($1))"; }
if_roots=1.3.6.1.2.1.2,1.3.6.1.2.1.31

# Walks on AGENT: IF-MIB (ours side by side, snmpbulkwalk once per subtree) and, when asked,
# the whole tree. Leaves our IF-MIB median and min in ours_if_med / ours_if_min.
walks() { # LABEL AGENT WHOLE_TREE(yes/no)
  local label=$1 a=$2 whole=$3
  read -r oi_mean oi_med oi_min < <(bench "ours_if_$label" "$bin/walk" "$a" public "$if_roots" $reps 1)
  read -r b2_mean b2_med b2_min < <(bench "bw2_$label" snmpbulkwalk -v2c -c public -Cr$reps -On "$a" 1.3.6.1.2.1.2)
  read -r b31_mean b31_med b31_min < <(bench "bw31_$label" snmpbulkwalk -v2c -c public -Cr$reps -On "$a" 1.3.6.1.2.1.31)
  echo "[$label] IF-MIB: ours $(count_ours "$a" $if_roots) varbinds mean/median/min ${oi_mean}/${oi_med}/${oi_min} ms;" \
    "snmpbulkwalk $(count_bulkwalk "$a" 1.3.6.1.2.1.2 1.3.6.1.2.1.31) varbinds (two runs, one per subtree)" \
    "$(calc "$b2_mean+$b31_mean")/$(calc "$b2_med+$b31_med")/$(calc "$b2_min+$b31_min") ms" \
    "-> ours/snmpbulkwalk median $(calc "$oi_med/($b2_med+$b31_med)"), min $(calc "$oi_min/($b2_min+$b31_min)")"
  "$bin/walk" "$a" public "$if_roots" $reps 20 | sed "s/^/[$label] IF-MIB in-process (no process start): /"
  if [ "$whole" = yes ]; then
    read -r oa_mean oa_med oa_min < <(bench "ours_all_$label" "$bin/walk" "$a" public 1.3 $reps 1)
    read -r ba_mean ba_med ba_min < <(bench "bw_all_$label" snmpbulkwalk -v2c -c public -Cr$reps -On "$a" 1.3)
    echo "[$label] whole tree: ours $(count_ours "$a" 1.3) varbinds ${oa_mean}/${oa_med}/${oa_min} ms;" \
      "snmpbulkwalk $(count_bulkwalk "$a" 1.3) varbinds ${ba_mean}/${ba_med}/${ba_min} ms" \
      "-> ours/snmpbulkwalk median $(calc "$oa_med/$ba_med"), min $(calc "$oa_min/$ba_min")"
    "$bin/walk" "$a" public 1.3 $reps 20 | sed "s/^/[$label] whole tree in-process (no process start): /"
  fi
  ours_if_med=$oi_med ours_if_min=$oi_min
}

# snmp_exporter scraping AGENT with module if_mib, against our IF-MIB walk of the same agent.
scrape() { # LABEL AGENT
  local label=$1 a=$2 url
  url="http://127.0.0.1:$exp_port/snmp?target=$a&module=if_mib"
  curl -sf "$url" > "$work/scrape_$label.txt" || { echo "snmp_exporter scrape failed:"; cat "$work/exporter.log"; exit 1; }
  read -r ex_mean ex_med ex_min < <(bench "exporter_$label" curl -sf -o /dev/null "$url")
  echo "[$label] snmp_exporter scrape (curl process included): mean/median/min ${ex_mean}/${ex_med}/${ex_min} ms," \
    "$(grep -c '^if' "$work/scrape_$label.txt") interface series, its own walk" \
    "$(awk '/^snmp_scrape_walk_duration_seconds/ {printf "%.1f ms", $2*1000}' "$work/scrape_$label.txt")" \
    "-> ours/snmp_exporter median $(calc "$ours_if_med/$ex_med"), min $(calc "$ours_if_min/$ex_min")"
}

echo "== (a) walks, max-repetitions $reps; hyperfine, 30 runs, process start included"
echo "   [snmpd] = net-snmp snmpd $snmpd_version on $agent"
walks snmpd "$agent" yes
snmpd_if_med=$ours_if_med snmpd_if_min=$ours_if_min
big_port=$(free_port SOCK_DGRAM)
"$bin/synthetic_agent" 2000 "$big_port" >"$work/synthetic-big.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q serving "$work/synthetic-big.log" && break; sleep 0.1; done
echo "   [synthetic-2000] = examples/synthetic_agent.rs, 2,000 interfaces, on 127.0.0.1:$big_port"
walks synthetic-2000 "127.0.0.1:$big_port" no
big_if_med=$ours_if_med big_if_min=$ours_if_min

# --- (b) prometheus-snmp-exporter with a hand-written module (0.21 config format) ---
echo "== (b) prometheus-snmp-exporter $(prometheus-snmp-exporter --version 2>&1 | awk '/version/ {print $3; exit}'), module if_mib (same subtrees, max-repetitions $reps)"
exp_port=$(free_port SOCK_STREAM)
{
  cat <<YML
if_mib:
  version: 2
  auth:
    community: public
  max_repetitions: $reps
  retries: 0
  timeout: 5s
  walk:
  - 1.3.6.1.2.1.2
  - 1.3.6.1.2.1.31
  metrics:
YML
  # name oid type: the columns of snmp/profiles/if-mib.toml
  while read -r name oid type; do
    cat <<YML
  - name: $name
    oid: $oid
    type: $type
    indexes:
    - labelname: ifIndex
      type: gauge
    lookups:
    - labels: [ifIndex]
      labelname: ifName
      oid: 1.3.6.1.2.1.31.1.1.1.1
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifDescr
      oid: 1.3.6.1.2.1.2.2.1.2
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifAlias
      oid: 1.3.6.1.2.1.31.1.1.1.18
      type: DisplayString
YML
  done <<'COLUMNS'
ifAdminStatus 1.3.6.1.2.1.2.2.1.7 gauge
ifOperStatus 1.3.6.1.2.1.2.2.1.8 gauge
ifHCInOctets 1.3.6.1.2.1.31.1.1.1.6 counter
ifHCOutOctets 1.3.6.1.2.1.31.1.1.1.10 counter
ifHCInUcastPkts 1.3.6.1.2.1.31.1.1.1.7 counter
ifHCOutUcastPkts 1.3.6.1.2.1.31.1.1.1.11 counter
ifInErrors 1.3.6.1.2.1.2.2.1.14 counter
ifOutErrors 1.3.6.1.2.1.2.2.1.20 counter
ifInDiscards 1.3.6.1.2.1.2.2.1.13 counter
ifOutDiscards 1.3.6.1.2.1.2.2.1.19 counter
ifHighSpeed 1.3.6.1.2.1.31.1.1.1.15 gauge
COLUMNS
} > "$work/snmp.yml"
prometheus-snmp-exporter --config.file="$work/snmp.yml" --web.listen-address="127.0.0.1:$exp_port" \
  >"$work/exporter.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$exp_port/" && break; sleep 0.1; done
ours_if_med=$snmpd_if_med ours_if_min=$snmpd_if_min
scrape snmpd "$agent"
ours_if_med=$big_if_med ours_if_min=$big_if_min
scrape synthetic-2000 "127.0.0.1:$big_port"

# --- (c) 1,000 simulated devices x 48 interfaces, one cycle ---
echo "== (c) fleet: 1000 devices x 48 interfaces, PollLimit 64, synthetic responder (one process, one thread)"
synth_port=$(free_port SOCK_DGRAM)
"$bin/synthetic_agent" 48 "$synth_port" >"$work/synthetic.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q serving "$work/synthetic.log" && break; sleep 0.1; done
for run in $(seq "$fleet_runs"); do
  echo "run $run: $("$bin/fleet" "127.0.0.1:$synth_port" 1000 64)"
done

# --- (d) 20,000-interface table, concurrency 1 and 4 (the test asserts the 10 s goal in release) ---
echo "== (d) 20,000-interface table (in-process responder of the tests' harness)"
cargo test --release -q -j "${CARGO_BUILD_JOBS:-1}" -p faultline-snmp --test real_peers \
  twenty_thousand_interfaces -- --nocapture 2>&1 | grep -E 'interfaces, concurrency|test result'
