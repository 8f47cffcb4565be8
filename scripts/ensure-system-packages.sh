#!/usr/bin/env bash
# Installs the Debian packages whose programs the tests start themselves
# (mosquitto, net-snmp's snmpd and tools, VictoriaMetrics, chromium, PostgreSQL), only when
# missing, and makes sure the PostgreSQL server the tests use is running: a cluster on
# 127.0.0.1:5432 with trust authentication for the user postgres from 127.0.0.1 (the tests
# read its URL from FLEETDESK_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
# With an argument, only what one make target uses: `demo` (Mosquitto, snmpd, VictoriaMetrics)
# or `agent` (Mosquitto and its clients); neither installs nor starts PostgreSQL.
set -euo pipefail
what=${1:-all}
case "$what" in
    all | demo | agent) ;;
    *) echo "usage: $0 [all|demo|agent]" >&2; exit 2 ;;
esac
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ "$what" != demo ]; then
    command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
fi
if [ "$what" != agent ]; then
    command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need+=(snmpd)
    command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
fi
if [ "$what" = all ]; then
    command -v snmptrap >/dev/null 2>&1 || need+=(snmp)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v curl >/dev/null 2>&1 || need+=(curl)  # the README tour's API call
    # the board's browser tests drive Debian's chromium (Playwright never downloads a browser)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    # initdb/pg_ctl (private clusters of the outage tests) and the shared server itself
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages: ${need[*]} (install them: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ "$what" = all ] || exit 0
# An explicit FLEETDESK_TEST_PG_URL names a server someone else runs: leave it alone.
[ -n "${FLEETDESK_TEST_PG_URL:-}" ] && exit 0
pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }
pg_ready && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not running on 127.0.0.1:5432 (start it: sudo pg_ctlcluster <version> main start)" >&2
    exit 1
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
conf=/etc/postgresql/$version/main
# What the tests expect: trust for postgres over TCP from 127.0.0.1 (a throw-away test server).
if ! grep -Eq '^host\s+all\s+postgres\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$conf/pg_hba.conf"
fi
pg_conftool -s "$version" main set listen_addresses 127.0.0.1 >/dev/null
pg_conftool -s "$version" main set port 5432 >/dev/null
echo "starting PostgreSQL $version (cluster main) on 127.0.0.1:5432"
if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
else
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 30); do pg_ready && exit 0; sleep 1; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
