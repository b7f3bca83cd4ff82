#!/usr/bin/env bash
# packaging/test-deps-supervisor.sh: installs Debian's `supervisor` package
# so that rpc2's tests can drive the real supervisorctl against circle's
# XML-RPC handler. It says what it installs before it does. Exits 0 when
# supervisorctl is already there; exits 2 (and says why) when it cannot
# install: not root, or no apt-get. The installed supervisord service is not
# started by this script (RUNLEVEL=1 keeps invoke-rc.d from starting it; a
# policy-rc.d, as in containers, does too).
set -euo pipefail
command -v supervisorctl >/dev/null && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps-supervisor: supervisorctl missing and cannot be installed: not root" >&2
	exit 2
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps-supervisor: supervisorctl missing and cannot be installed: no apt-get" >&2
	exit 2
fi
echo "test-deps-supervisor: installing Debian's package supervisor (supervisorctl) system-wide (apt-get update first)" >&2
"$(dirname "$0")/apt-install.sh" supervisor
command -v supervisorctl >/dev/null
