#!/usr/bin/env bash
# make bench: circled side by side with Debian's supervisord; writes BENCHMARKS.md.
# Not part of `make test`. Progress goes to stderr. Extra arguments go to
# the harness (bench/main.go), e.g. `bash bench/run.sh -quick -out /tmp/B.md`,
# or `bash bench/run.sh -alt /path/to/other/circled` for an A/B of two builds.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
say() { echo "bench: $*" >&2; }

# 1. supervisord: install Debian's package when missing and we can, without
# leaving the system-wide service running (policy-rc.d forbids starting it).
if ! command -v supervisord >/dev/null || ! command -v supervisorctl >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing Debian's supervisor package (service start disabled)"
		had_policy=0
		[ -e /usr/sbin/policy-rc.d ] && had_policy=1
		if [ $had_policy = 0 ]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod +x /usr/sbin/policy-rc.d
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y supervisor >/dev/null 2>&1 ||
			{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y supervisor >/dev/null 2>&1; } ||
			say "apt-get install supervisor failed"
		[ $had_policy = 0 ] && rm -f /usr/sbin/policy-rc.d
	fi
fi
# Never leave the Debian service running system-wide (it would also add noise).
if [ -f /var/run/supervisord.pid ] && kill -0 "$(cat /var/run/supervisord.pid)" 2>/dev/null; then
	if grep -q /etc/supervisor/supervisord.conf "/proc/$(cat /var/run/supervisord.pid)/cmdline" 2>/dev/null; then
		say "stopping the system-wide supervisord service started by the package"
		command -v systemctl >/dev/null && systemctl stop supervisor 2>/dev/null || kill "$(cat /var/run/supervisord.pid)" || true
	fi
fi
command -v supervisord >/dev/null || say "supervisord unavailable: the comparison is skipped (circled only)"

# 2. limits for 2000 children per daemon (two daemons at once)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
pidmax=$(cat /proc/sys/kernel/pid_max)
if [ "$pidmax" -lt 32768 ]; then
	say "kernel.pid_max=$pidmax is low for 2 × 2000 children; raising to 32768"
	echo 32768 >/proc/sys/kernel/pid_max || say "cannot raise kernel.pid_max"
fi

# 3. build
say "make build"
make build >&2
go build -o bin/circle-bench ./bench

# 4. Go benchmarks of the hot paths
gb=$(mktemp)
trap 'rm -f "$gb"' EXIT
say "go test -bench (config load, line splitting, status document)"
go test -run '^$' -bench . -benchmem -count 1 ./supervisor/config ./supervisor/logs ./ctl \
	| grep -E '^(Benchmark|cpu:|goos|ok|FAIL)' | tee "$gb" >&2

# 5. the side-by-side scenarios
say "scenarios (progress below)"
# The report names the command that made it: make bench, or this script
# with its arguments (an explicit -command among them wins: flags parse
# left to right).
cmd="make bench"
[ $# -gt 0 ] && cmd="bash bench/run.sh $*"
bin/circle-bench -gobench "$gb" -command "$cmd" "$@"
say "done in $(( $(date +%s) - start )) s"
