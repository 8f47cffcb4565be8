#!/usr/bin/env bash
# Installs the Debian packages whose programs the tests start themselves
# (mosquitto, net-snmp's snmpd and tools, VictoriaMetrics, chromium), only when missing.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v snmptrap >/dev/null 2>&1 || need+=(snmp)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# the board's browser tests drive Debian's chromium (Playwright never downloads a browser)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (install them: sudo apt-get install ${need[*]})" >&2
    exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
