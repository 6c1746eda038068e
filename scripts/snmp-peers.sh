#!/usr/bin/env bash
# Installs the real SNMP peers that faultline-snmp's tests run on 127.0.0.1, when missing:
#   - net-snmp `snmpd` and the `snmp` tools (snmptrap, snmpinform, snmpbulkwalk) from apt;
#   - a Python venv with snmpsim (responder) and snmpsim-data (recordings of real devices) at
#     ${FAULTLINE_VENV:-$HOME/.cache/faultline/venv}, made with Debian's /usr/bin/python3.
# Idempotent: running it again when everything is present does nothing and exits 0.
set -euo pipefail

VENV="${FAULTLINE_VENV:-$HOME/.cache/faultline/venv}"
PY_PACKAGES=(snmpsim==1.2.2 snmpsim-data==1.0.1 cryptography)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "$@"
    fi
}

missing=()
command -v /usr/sbin/snmpd >/dev/null 2>&1 || missing+=(snmpd)
command -v snmptrap >/dev/null 2>&1 || missing+=(snmp)
/usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "snmp-peers: installing apt packages: ${missing[*]}"
    apt_install "${missing[@]}"
fi

venv_ok() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/snmpsim-command-responder" ] &&
        "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import importlib.metadata as m
assert m.version("snmpsim") == "1.2.2"
assert m.version("snmpsim-data") == "1.0.1"
import cryptography  # noqa: F401  (without it every v3 authPriv request fails)
PY
}

if ! venv_ok; then
    echo "snmp-peers: creating venv at $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
    venv_ok || { echo "snmp-peers: venv at $VENV is still incomplete" >&2; exit 1; }
fi
echo "snmp-peers: ready (snmpd $(/usr/sbin/snmpd -v 2>/dev/null | awk '/version/{print $NF; exit}'), venv $VENV)"
