#!/usr/bin/env bash
# The soak run: a real agent and collector for SECONDS (default 300) with, in turns, kill -9 of the
# collector, kill -9 of the agent, a collector outage and a full outbox disk during an outage;
# prints sent / applied / applied twice / dropped / lost. Needs root (it mounts a small tmpfs).
#   scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
cargo build --workspace --bins --locked
FAULTLINE_SOAK_SECS=$secs cargo test --locked -p faultline-tests --test e2e soak \
  -- --ignored --exact soak::soak --nocapture --test-threads 1
