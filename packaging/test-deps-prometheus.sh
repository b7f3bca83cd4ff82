#!/usr/bin/env bash
# packaging/test-deps-prometheus.sh: installs Debian's `prometheus` package,
# which provides the Prometheus server (/usr/bin/prometheus) and promtool,
# so that the metrics tests can run a real Prometheus on 127.0.0.1 scraping
# circled and check circled's /metrics output, packaging/prometheus's scrape
# config and its alert rules with promtool. It says what it installs before
# it does, and runs apt-get update first. Exits 0 when prometheus and
# promtool are already there; exits 2 (and says why) when it cannot
# install: not root, or no apt-get. The package's own prometheus service is
# not started by this script (RUNLEVEL=1 keeps invoke-rc.d from starting it;
# a policy-rc.d, as in containers, does too); the tests start their own
# server on their own port, configuration and data directory.
set -euo pipefail
have() { command -v prometheus >/dev/null && command -v promtool >/dev/null; }
have && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps-prometheus: prometheus/promtool missing and cannot be installed: not root" >&2
	exit 2
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps-prometheus: prometheus/promtool missing and cannot be installed: no apt-get" >&2
	exit 2
fi
echo "test-deps-prometheus: installing Debian's package prometheus (the Prometheus server and promtool) system-wide (apt-get update first)" >&2
"$(dirname "$0")/apt-install.sh" prometheus
have
