#!/bin/sh
# After install or upgrade (deb: configure [OLD-VERSION], abort-upgrade
# NEW-VERSION; rpm: $1 = 1 on install, 2 on upgrade).
# The service is not enabled or started here: add watchers to
# /etc/circled/conf.d/ first, then `systemctl enable --now circled`.
# An upgrade does not restart a running circled (that would restart every
# supervised process): when circled answers on the packaged config's
# socket, `circlectl upgrade` makes it execute the new /usr/bin/circled in
# place (same pid; every process keeps running, untouched). If that is
# refused (the new binary failed its check) or fails, the old circled keeps
# running, the reason is printed, and the package install still succeeds:
# `systemctl restart circled` when convenient.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi

upgrading=
case "$1" in
configure) [ -n "${2:-}" ] && upgrading=1 ;; # deb: configure OLD-VERSION
abort-upgrade) upgrading=1 ;;                # deb: the old binary is back
[2-9] | [1-9][0-9]*) upgrading=1 ;;          # rpm: 2 (or more) installed
esac
if [ -n "$upgrading" ] && [ -x /usr/bin/circlectl ] && [ -x /usr/bin/circled ]; then
	# The packaged daemon only: its config names the socket (circlectl
	# would otherwise follow the installing user's $CIRCLED_SOCKET or
	# $CIRCLED_HOST).
	unset CIRCLED_SOCKET CIRCLED_HOST
	ctl="/usr/bin/circlectl"
	if [ -r /etc/circled/circled.ini ]; then
		ctl="$ctl -c /etc/circled/circled.ini"
	fi
	# Exit 0: a daemon answers; 4: none runs; anything else (an unreadable
	# config): say so, leave it.
	rc=0
	$ctl version >/dev/null 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		rc=0
		out=$($ctl upgrade --binary /usr/bin/circled --timeout 60s 2>&1) || rc=$?
		if [ "$rc" = 0 ]; then
			echo "circled: $out"
		else
			echo "circled: live upgrade failed (circlectl upgrade exit $rc), the running circled keeps its old version; restart it when convenient (systemctl restart circled): $out" >&2
		fi
	elif [ "$rc" != 4 ]; then
		echo "circled: could not tell whether circled runs ($ctl version: exit $rc): it was not upgraded in place" >&2
	fi
fi
exit 0
