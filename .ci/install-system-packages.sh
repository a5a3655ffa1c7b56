#!/usr/bin/env bash
# System packages the test suite runs for real (not Python packages):
# Prometheus Alertmanager, which tests/forward/test_alertmanager_real.py starts
# on a free port. Installs only what is missing, so it is cheap to call on
# every CI run.
set -euo pipefail

if [ ! -x /usr/bin/prometheus-alertmanager ]; then
    if ! command -v apt-get >/dev/null; then
        echo "prometheus-alertmanager is missing and apt-get is not available:" \
            "install it by hand, or its test will be skipped" >&2
        exit 0
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus-alertmanager
    # The package enables a system service on :9093/:9094; the tests start their
    # own instance, so do not leave a daemon behind on a CI host.
    if [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now prometheus-alertmanager.service || true
    fi
fi
