#!/bin/sh
# After removal. deb: $1 = remove | purge | upgrade | ...; rpm: $1 = 0 on
# erase, 1 on upgrade. Purge (deb) also deletes circled's logs; dpkg itself
# deletes the conffiles.
set -e
case "$1" in
purge)
	rm -rf /var/log/circled
	;;
esac
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
