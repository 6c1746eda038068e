#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, only where missing:
# Prometheus (prometheus + promtool), openssl, curl, net-snmp (snmpd, snmptrap), Python venv,
# mosquitto (broker + mosquitto_pub/passwd) for the MQTT tests, postgresql (the PostgreSQL ticket
# store's tests start a private server), prometheus-blackbox-exporter (the
# probe benchmark's peer), socat (a serial line for Modbus RTU), chromium, chromium-driver and a
# CJK font, fonts-wqy-zenhei (the console's browser test), dovecot-imapd (the repair-mailbox
# tests' IMAP server), and pymodbus with pyserial (the Modbus
# test server, TCP and RTU) in the venv of snmp-peers.sh; for the packages (scripts/package.sh
# and its test) cargo-deb and cargo-generate-rpm at pinned versions, and Debian's rpm to inspect
# the .rpm files.
set -euo pipefail

packages=(prometheus openssl curl snmpd snmp python3-venv mosquitto mosquitto-clients postgresql prometheus-blackbox-exporter socat rpm chromium chromium-driver fonts-wqy-zenhei dovecot-imapd)
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
VENV="${FAULTLINE_VENV:-$HOME/.cache/faultline/venv}"
if ! "$VENV/bin/python" -c 'import importlib.metadata as m; assert m.version("pymodbus") == "3.16.1"' >/dev/null 2>&1; then
  echo "installing pymodbus into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pymodbus==3.16.1
fi
if ! "$VENV/bin/python" -c 'import serial' >/dev/null 2>&1; then
  echo "installing pyserial into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pyserial==3.5
fi
# Packaging tools, built from crates.io once (a few minutes each) and kept in ~/.cargo/bin.
for tool in cargo-deb@3.8.0 cargo-generate-rpm@0.21.1; do
  name="${tool%@*}"
  version="${tool#*@}"
  if ! "$name" --version 2>/dev/null | grep -q "$version"; then
    echo "installing $tool"
    cargo install --locked --quiet "$name" --version "$version"
  fi
done
