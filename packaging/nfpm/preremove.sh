#!/bin/sh
# Before removal. deb: $1 = remove | upgrade | ...; rpm: $1 = 0 on erase,
# 1 on upgrade. Only a real removal stops and disables the service.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl --no-reload disable --now circled.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
