#!/usr/bin/env bash
# make test-windows: cross-compiled Windows tests under Wine.
#
#  1. installs wine and the mingw compiler from Debian when missing (or says
#     why it cannot, and exits 0 so the rest of CI runs);
#  2. makes a throwaway Wine prefix with the bcryptprimitives.dll shim (Go >=
#     1.22 needs ProcessPrng, which Wine 8 lacks; see wine-shim/);
#  3. keeps ONE wineserver for the whole run (two services.exe racing make
#     the SCM answer "not installed");
#  4. runs the Windows unit tests (GOOS=windows go test -exec wine);
#  5. smoke-tests the service with circled's own binary: install -> start
#     (--daemon) -> status Running -> stop -> uninstall, and checks that the
#     Job Objects kill a watcher's child and grandchild after the stop, and
#     after circled itself is killed.
#
# What Wine 8 cannot do (CTRL_BREAK delivery, pipe accept, recovery
# actions, ...) is tested on real Windows only: go test -tags realwindows
# (see packaging/windows/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
start=$SECONDS

skip() { echo "SKIP make test-windows: $*"; exit 0; }

[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || skip "needs a linux/amd64 host for wine64 (this is $(uname -s)/$(uname -m))"

if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
	command -v apt-get >/dev/null || skip "wine is not installed and there is no apt-get to install it"
	[ "$(id -u)" = 0 ] || skip "wine is not installed and installing it needs root"
	echo "make test-windows: installing wine, wine64 and gcc-mingw-w64-x86-64-win32 system-wide from Debian's packages (apt-get update first; about 30 s)"
	export DEBIAN_FRONTEND=noninteractive
	timeout 120 apt-get update >/tmp/circled-wine-apt.log 2>&1 || true
	timeout 240 apt-get install -y --no-install-recommends wine wine64 gcc-mingw-w64-x86-64-win32 >>/tmp/circled-wine-apt.log 2>&1 ||
		skip "apt-get could not install wine (log: /tmp/circled-wine-apt.log): $(tail -1 /tmp/circled-wine-apt.log)"
fi
command -v wine >/dev/null && command -v wineserver >/dev/null || skip "wine installed but /usr/bin/wine or wineserver is missing"

work=$(mktemp -d /tmp/circled-wine.XXXXXX)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEARCH=win64
export GOOS=windows GOARCH=amd64 CGO_ENABLED=0
cleanup() {
	wineserver -k 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== wine prefix ($(wine --version))"
timeout 120 wineboot -i >/dev/null 2>&1 || skip "wineboot -i failed: wine cannot make a prefix here"
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$work/bcryptprimitives.dll" packaging/windows/wine-shim/bcryptprimitives.c -ladvapi32
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
# One persistent wineserver for the whole run.
wineserver -k 2>/dev/null || true
wineserver -w
wineserver -p
wine cmd /c exit

echo "== unit tests of the Windows files (GOOS=windows go test -exec wine)"
go test -exec wine -count=1 -timeout 5m -run '^TestWindows' ./watcher ./ctl ./supervisor ./cmd/circled
# Not ./supervisor/config: its Windows test uses t.TempDir, whose cleanup
# fails under Wine 8 (Go deletes with FileDispositionInformationEx, which
# Wine rejects with "Invalid function"); our tests use a tolerant tempDir.

echo "== service smoke test with circled's own binary"
bin=$work/bin
mkdir -p "$bin"
go build -o "$bin/circled.exe" ./cmd/circled
go build -o "$bin/circlectl.exe" ./cmd/circlectl
go test -c -o "$bin/helper.exe" ./watcher # its TestMain has the grandchild and check-gone modes
win() { winepath -w "$1"; }

conf=$work/conf
mkdir -p "$conf"
# A watcher whose process starts a grandchild; both write their pid.
mkconf() { # FILE PIDFILE SOCKET
	cat >"$1" <<INI
[circled]
graceful_timeout = 2
socket = $3

[watcher:tree]
cmd = $(win "$bin/helper.exe")
copy_env = true
graceful_timeout = 1

[env:tree]
CIRCLE_HELPER = grandchild
CIRCLE_PIDFILE = $(win "$2")
INI
}
pids1=$work/pids-service
pids2=$work/pids-killed
mkconf "$conf/service.ini" "$pids1" '\\.\pipe\circled-smoke'
mkconf "$conf/killed.ini" "$pids2" '\\.\pipe\circled-smoke-fg'
name=circled-smoke
cexe=$(win "$bin/circled.exe")

run() { # EXPECTED-RC CMD... : run, show output, check the exit code
	local want=$1 rc=0 out
	shift
	out=$("$@" 2>&1) || rc=$?
	printf '$ %s\n%s\n' "$*" "$out" | sed 's/^/  /'
	[ "$rc" = "$want" ] || { echo "FAIL: exit $rc, want $want"; exit 1; }
	last=$out
}
wait_pids() { # FILE: until child and grandchild have written their pids
	for _ in $(seq 200); do
		[ "$(cat "$1" 2>/dev/null | wc -w)" -ge 2 ] && return 0
		sleep 0.1
	done
	echo "FAIL: no child and grandchild pids in $1"; exit 1
}
alive() { # FILE: they must be running now, or gone would prove nothing
	if CIRCLE_HELPER=check-gone CIRCLE_PIDFILE=$(win "$1") wine "$bin/helper.exe" >/dev/null 2>&1; then
		echo "FAIL: child and grandchild not running before the stop"; exit 1
	fi
}
gone() { # FILE: until every pid in it is gone
	for _ in $(seq 100); do
		CIRCLE_HELPER=check-gone CIRCLE_PIDFILE=$(win "$1") wine "$bin/helper.exe" >/dev/null 2>&1 && {
			echo "  child and grandchild ($(tr '\n' ' ' <"$1")) are gone"; return 0; }
		sleep 0.1
	done
	CIRCLE_HELPER=check-gone CIRCLE_PIDFILE=$(win "$1") wine "$bin/helper.exe" || true
	echo "FAIL: processes left behind"; exit 1
}

run 0 wine "$bin/circled.exe" service install -c "$(win "$conf/service.ini")" --service-name $name
run 3 wine "$bin/circled.exe" service status --service-name $name
[ "$last" = stopped ] || { echo "FAIL: status $last"; exit 1; }
run 0 wine "$bin/circled.exe" -c "$(win "$conf/service.ini")" --daemon --service-name $name
run 0 wine "$bin/circled.exe" service status --service-name $name
[ "$last" = running ] || { echo "FAIL: status $last"; exit 1; }
wait_pids "$pids1"
alive "$pids1"
run 0 wine "$bin/circled.exe" service stop --service-name $name --timeout 30s
run 3 wine "$bin/circled.exe" service status --service-name $name
gone "$pids1"
# --daemon with other arguments than the installed ones says so.
run 1 wine "$bin/circled.exe" -c "$(win "$conf/service.ini")" --daemon --service-name $name --log-level debug
grep -q "installed with other arguments" <<<"$last" || { echo "FAIL: no 'installed with other arguments'"; exit 1; }
run 0 wine "$bin/circled.exe" service uninstall --service-name $name
run 4 wine "$bin/circled.exe" service status --service-name $name

echo "== Job Objects when circled itself is killed"
wine "$bin/circled.exe" -c "$(win "$conf/killed.ini")" >"$work/fg.log" 2>&1 &
fg=$!
wait_pids "$pids2"
alive "$pids2"
echo "  kill -9 circled (linux pid $fg)"
kill -9 "$fg"
wait "$fg" 2>/dev/null || true
gone "$pids2"

echo "PASS make test-windows ($((SECONDS - start)) s)"
