#!/usr/bin/env bash
# packaging/test-deps-uwsgi.sh: installs Debian's `uwsgi` and
# `uwsgi-plugin-python3` packages so that cmd/circled's
# TestSocketsCircusExamples can run circus's uwsgi_lossless_reload.ini with
# the real uwsgi behind a circled socket. It says what it installs before it
# does. Exits 0 when uwsgi and its python3 plugin are already there; exits 2
# (and says why) when it cannot install: not root, or no apt-get. The uwsgi
# package's system-wide service is not started by this script (RUNLEVEL=1
# keeps invoke-rc.d from starting it; a policy-rc.d, as in containers, does
# too; and Debian's uwsgi service runs no app until one is enabled).
set -euo pipefail
have() {
	command -v uwsgi >/dev/null && ls /usr/lib/uwsgi/plugins/python3*_plugin.so >/dev/null 2>&1
}
have && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps-uwsgi: uwsgi or its python3 plugin missing and cannot be installed: not root" >&2
	exit 2
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps-uwsgi: uwsgi or its python3 plugin missing and cannot be installed: no apt-get" >&2
	exit 2
fi
echo "test-deps-uwsgi: installing Debian's packages uwsgi and uwsgi-plugin-python3 system-wide (apt-get update first)" >&2
"$(dirname "$0")/apt-install.sh" uwsgi uwsgi-plugin-python3
have
