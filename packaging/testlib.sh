# shellcheck shell=bash
# Helpers shared by the shell test drivers (packaging/docker/test.sh,
# packaging/systemd/test-upgrade.sh): source it after `set -euo pipefail`.
# pass/fail record a check (fail sets failed=1 and goes on); die fails at
# once; poll waits for a condition with a deadline (never a bare sleep).

failed=0
pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*" >&2
	failed=1
}
die() {
	echo "FAIL $*" >&2
	exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# poll SECONDS CMD...: run CMD every 100 ms until it succeeds or SECONDS pass.
poll() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# poll_quiet SECONDS CMD...: poll, with CMD's output discarded.
poll_quiet() {
	local secs=$1
	shift
	poll "$secs" _quietly "$@"
}
_quietly() { "$@" >/dev/null 2>&1; }
