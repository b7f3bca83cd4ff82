#!/bin/sh
# After install or upgrade (deb: configure; rpm: $1 = 1 or 2).
# The service is not enabled or started here: add watchers to
# /etc/circled/conf.d/ first, then `systemctl enable --now circled`.
# An upgrade does not restart a running circled (that would restart every
# supervised process): `systemctl restart circled` when convenient.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
