#!/usr/bin/env bash
# A `/metrics` scrape of 100,000 series (issue 14, item 5): the collector holding 100k series
# pushed by loadgen (tests/src/bin/loadgen.rs) (10 agents × 10,000 interface samples), next to Debian's
# prometheus-pushgateway holding the same series (the collector's exposition, comment lines
# dropped, PUT to it) — both serve series held in memory as text. Each is scraped with curl
# RUNS times after one warm-up scrape; the summary gives min / median / max wall time and the
# body size. Needs release builds:
#   cargo build --release -p faultline-collector -p faultline-tests
# Usage: scripts/bench-scrape.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

time_scrapes() { # URL NAME: RUNS timed scrapes after a warm-up
  curl -sf -o /dev/null "$1"
  for _ in $(seq "$runs"); do curl -sf -o /dev/null -w '%{time_total}\n' "$1"; done |
    sort -n | awk -v name="$2" '{t[NR] = $1 * 1000} END {
      printf "%-13s min %6.1f ms  median %6.1f ms  max %6.1f ms  (%d scrapes)\n", name, t[1], t[int((NR + 1) / 2)], t[NR], NR }'
}

if [ "${1:-}" = "--inner" ]; then # run by loadgen while the collector holds the series
  runs=$2
  work=$3
  curl -sf "$FAULTLINE_URL/metrics" > "$work/collector.txt"
  series=$(grep -c '^faultline_snmp_if_metric_' "$work/collector.txt")
  echo "collector: $series loadgen series, $(wc -c < "$work/collector.txt") bytes of /metrics"
  time_scrapes "$FAULTLINE_URL/metrics" collector
  grep '^faultline_snmp_if_metric_' "$work/collector.txt" > "$work/push.txt"
  curl -sf -X PUT --data-binary @"$work/push.txt" "http://$PUSHGATEWAY/metrics/job/bench"
  curl -sf "http://$PUSHGATEWAY/metrics" > "$work/pushgateway.txt"
  echo "pushgateway: $(grep -c '^faultline_snmp_if_metric_' "$work/pushgateway.txt") series, $(wc -c < "$work/pushgateway.txt") bytes"
  time_scrapes "http://$PUSHGATEWAY/metrics" pushgateway
  exit 0
fi

command -v prometheus-pushgateway >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus-pushgateway --web.listen-address="127.0.0.1:$port" >"$work/pushgateway.log" 2>&1 &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
PUSHGATEWAY="127.0.0.1:$port" LOADGEN_THEN="$0 --inner $runs $work" \
  target/release/loadgen target/release/faultline-collector 10 1 10000
