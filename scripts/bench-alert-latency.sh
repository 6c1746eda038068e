#!/usr/bin/env bash
# Alert latency: a threshold crossing pushed to the collector → ticket stored and first webhook
# received, in the same run as Prometheus + Alertmanager (Debian packages) scraping the collector
# and alerting on the same crossings, once with their default timings and once with 1 s intervals.
# Installs the peers when missing (as root), builds the release binaries, runs
# `alert_latency` (tests/src/bin/alert_latency.rs), which starts and stops every process itself
# on 127.0.0.1 with temporary directories. Every wait is bounded; the whole run takes about
# 2 + N × SPACING/1000 + (time for the default-timing peers, ≤ PEER_WAIT) seconds, ≈ 5 min.
# Usage: scripts/bench-alert-latency.sh [CROSSINGS] [SPACING_MS] [PEER_WAIT_S]
set -euo pipefail
cd "$(dirname "$0")/.."
crossings=${1:-120}
spacing_ms=${2:-500}
peer_wait_s=${3:-200}
target=${CARGO_TARGET_DIR:-target}

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]} (apt-get install prometheus prometheus-alertmanager)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release -p faultline-collector -p faultline-tests --bins
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 "$target/release/alert_latency" "$target/release/faultline-collector" \
  --crossings "$crossings" --spacing-ms "$spacing_ms" --peer-wait-s "$peer_wait_s" \
  --prometheus "$(command -v prometheus)" --alertmanager "$(command -v prometheus-alertmanager)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
