#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, only where missing:
# Prometheus (prometheus + promtool), openssl, curl, net-snmp (snmpd, snmptrap), Python venv.
set -euo pipefail

packages=(prometheus openssl curl snmpd snmp python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/snmp-peers.sh" ] || [ -f "$here/snmp-peers.sh" ]; then
  bash "$here/snmp-peers.sh"
fi
