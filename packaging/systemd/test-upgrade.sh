#!/usr/bin/env bash
# make test-systemd: live upgrade (issue 19) under a real systemd.
#
# A minimal Debian bookworm root filesystem with systemd (debootstrap from
# deb.debian.org, cached as /var/tmp/circle-systemd-rootfs.tar) is imported
# as a Docker image and booted with systemd as PID 1 in a privileged
# container. The shipped packaging/systemd/circled.service runs a static
# circled (version OLD) with two `sleep` watchers; then
# `circlectl upgrade --binary /new/circled` (version NEW) must leave:
#   - the unit's MainPID the same, ActiveState=active, SubState=running,
#     NRestarts=0, ExecMainStartTimestamp unchanged, and no stop or start of
#     circled.service in the journal;
#   - the watchers' pids unchanged (circlectl status --json);
#   - `circlectl version` answering NEW from the same pid;
#   - systemd getting MAINPID=<same pid> and READY=1 from the new binary
#     (its debug log); journal lines with warnings are printed;
#   - the same again for the package path: /usr/bin/circled replaced by a
#     third build (renamed over it, as dpkg does), `circlectl upgrade`
#     without --binary;
#   - `systemctl reload circled` (ExecReload) working afterwards, the unit
#     active again, nothing restarted;
#   - `systemctl stop circled` stopping cleanly: inactive, no process left
#     in the unit's cgroup, the watchers gone.
# Prints "SKIP: <reason>" and exits 0 when Docker, debootstrap or the mirror
# is unavailable; exits 1 on a failed check. The container and the imported
# image are removed on exit; the rootfs tarball stays (delete it to rebuild).
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
rootfs=${CIRCLE_SYSTEMD_ROOTFS:-/var/tmp/circle-systemd-rootfs.tar}
mirror=http://deb.debian.org/debian

skip() {
	echo "SKIP: $*"
	exit 0
}
# shellcheck source=packaging/testlib.sh
. packaging/testlib.sh

command -v docker >/dev/null 2>&1 || skip "no docker CLI in PATH"
docker info >/dev/null 2>&1 || skip "no Docker Engine answers (docker info failed)"

t0=$(now_ms)
work=$(mktemp -d)
tag="circle-systemd-test:$$"
label="circle-systemd-test-run=$$"
cleanup() {
	local ids
	ids=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
	if [ -n "$ids" ]; then
		docker rm -f $ids >/dev/null 2>&1 || true
	fi
	docker rmi -f "$tag" >/dev/null 2>&1 || true
	if [ -d "$work/rootfs" ]; then
		# debootstrap's mounts, if it was interrupted.
		for m in proc sys dev/pts dev; do umount "$work/rootfs/$m" 2>/dev/null || true; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# Interrupted (Ctrl-C, go test's timeout): still remove the container and image.
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The root filesystem (cached).
if [ ! -s "$rootfs" ]; then
	[ "$(id -u)" = 0 ] || skip "debootstrap needs root to build $rootfs"
	if ! command -v debootstrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
		echo "installing Debian's debootstrap package"
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap; } >"$work/apt.log" 2>&1 || tail -5 "$work/apt.log" >&2
	fi
	command -v debootstrap >/dev/null 2>&1 || skip "debootstrap is not installed and apt-get could not install it, and $rootfs is not cached"
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -m 20 -o /dev/null "$mirror/dists/bookworm/Release" || skip "Debian's mirror $mirror does not answer"
	elif ! timeout 20 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' 2>/dev/null; then
		skip "Debian's mirror deb.debian.org:80 does not answer"
	fi
	echo "debootstrap bookworm (minbase + systemd) into $rootfs: a few minutes, once"
	if ! debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -20 "$work/debootstrap.log" >&2
		if grep -qiE 'Failed getting release file|Couldn.t download|Temporary failure resolving|Could not resolve' "$work/debootstrap.log"; then
			skip "debootstrap could not download from $mirror"
		fi
		die "debootstrap failed (log above)"
	fi
	# Boot fast and quietly: no getty on a console nobody reads, and an
	# empty machine-id that systemd fills in at boot.
	rm -f "$work/rootfs/etc/systemd/system/getty.target.wants/"* || true
	: >"$work/rootfs/etc/machine-id"
	rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* || true
	tar -C "$work/rootfs" --numeric-owner -cf "$rootfs.$$.tmp" .
	mv "$rootfs.$$.tmp" "$rootfs"
	rm -rf "$work/rootfs"
fi
echo "rootfs ready after $(($(now_ms) - t0)) ms: $rootfs"

# 2. Two static builds: OLD runs first, NEW replaces it in place.
oldver=0.0.0-systemd.old
newver=0.0.0-systemd.new
pkgver=0.0.0-systemd.pkg
pkg=github.com/circle-supervisor/circle/internal/buildinfo
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-X $pkg.Version=$oldver" -o "$work/circled" ./cmd/circled
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-X $pkg.Version=$newver" -o "$work/circled-new" ./cmd/circled
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-X $pkg.Version=$pkgver" -o "$work/circled-pkg" ./cmd/circled
CGO_ENABLED=0 "$GO" build -trimpath -o "$work/circlectl" ./cmd/circlectl
cat >"$work/circled.ini" <<'EOF'
[circled]
graceful_timeout = 3
watch_config = false

[watcher:sleepers]
cmd = /bin/sleep infinity
numprocesses = 2

[watcher:napper]
cmd = /bin/sleep 100000
EOF
"$work/circled" check -c "$work/circled.ini" >/dev/null || die "the test config is not valid"

# 3. Boot systemd in a container.
docker import -c 'CMD ["/sbin/init"]' "$rootfs" "$tag" >/dev/null || die "docker import $rootfs failed"
# systemd 252 with the host's cgroup hierarchy (hybrid or unified) mounted
# read-write and the host's cgroup namespace: it then sets up its units in
# the container's own cgroup (/docker/ID/...).
common=(--label "$label" --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw
	--tmpfs /run --tmpfs /run/lock --tmpfs /tmp -e container=docker --stop-signal SIGRTMIN+3)
if ! c=$(docker run -d --privileged "${common[@]}" "$tag" /sbin/init 2>"$work/run.err"); then
	# --privileged asks for every capability; where the engine itself runs
	# without some (a sandboxed machine: "unable to apply caps: operation not
	# permitted"), ask for all but those missing from this shell's bounding
	# set (the engine is usually no better off), unconfined.
	cat "$work/run.err"
	docker rm -f $(docker ps -aq --filter "label=$label") >/dev/null 2>&1 || true
	caps=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable
		net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio
		sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time
		sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog
		wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore)
	bnd=$((16#$(awk '/^CapBnd/ {print $2}' /proc/self/status)))
	drop=()
	for i in "${!caps[@]}"; do
		[ $(((bnd >> i) & 1)) = 1 ] || drop+=(--cap-drop "${caps[$i]^^}")
	done
	echo "retrying without --privileged: --cap-add ALL ${drop[*]} (missing here), seccomp and apparmor unconfined"
	c=$(docker run -d --cap-add ALL "${drop[@]}" --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
		"${common[@]}" "$tag" /sbin/init) || die "docker run (systemd as PID 1) failed"
fi
x() { docker exec "$c" "$@"; }
booted() {
	local s
	s=$(x systemctl is-system-running 2>/dev/null || true)
	[ "$s" = running ] || [ "$s" = degraded ]
}
if poll_quiet 60 booted; then
	pass "systemd booted as PID 1 ($(x systemctl --version | head -1)): $(x systemctl is-system-running 2>&1 || true)"
else
	docker logs "$c" 2>&1 | tail -40 >&2
	die "systemd did not reach running/degraded within 60 s: $(x systemctl is-system-running 2>&1 || true)"
fi
if [ "$(x systemctl is-system-running 2>&1 || true)" = degraded ]; then
	echo "note: failed units in the container: $(x systemctl --failed --no-legend --plain 2>&1 | awk '{print $1}' | tr '\n' ' ')"
fi

x mkdir -p /etc/circled /new
docker cp "$work/circled" "$c:/usr/bin/circled"
docker cp "$work/circlectl" "$c:/usr/bin/circlectl"
docker cp "$work/circled-new" "$c:/new/circled"
docker cp "$work/circled.ini" "$c:/etc/circled/circled.ini"
docker cp packaging/systemd/circled.service "$c:/etc/systemd/system/circled.service"
x systemctl daemon-reload

ctl() { x circlectl -c /etc/circled/circled.ini "$@"; }
show() { x systemctl show circled -p "$1" --value; }
props() { x systemctl show circled -p MainPID,ActiveState,SubState,NRestarts,ExecMainStartTimestamp,ExecMainPID | sort | tr '\n' ' '; }
# pids: "NAME WID PID" of every watcher process, sorted.
pids() {
	ctl status --json | python3 -c 'import json,sys
for w in json.load(sys.stdin)["watchers"]:
    for p in w.get("processes") or []:
        print(w["name"], p["wid"], p["pid"])' | sort
}
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read circlectl status --json"
# unit_pids: the pids in circled.service's cgroup, sorted.
unit_pids() {
	local cg
	cg=$(show ControlGroup)
	[ -n "$cg" ] || return 0
	x sh -c "cat /sys/fs/cgroup/unified$cg/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup$cg/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/systemd$cg/cgroup.procs" | sort -n
}
substate_running() { [ "$(show SubState)" = running ]; }
three_running() { [ "$(pids | wc -l)" = 3 ] && ctl status --quiet; }

# 4. Start circled.service (Type=notify: start returns after READY=1).
if x systemctl start circled; then
	pass "systemctl start circled: returned (READY=1 received): $(props)"
else
	x journalctl -u circled --no-pager | tail -30 >&2
	die "systemctl start circled failed"
fi
poll_quiet 20 three_running || {
	ctl status >&2 || true
	die "the 3 sleep processes never ran"
}
mainpid=$(show MainPID)
started=$(show ExecMainStartTimestamp)
before=$(pids)
v=$(ctl version)
grep -q "^circled $oldver .*pid $mainpid)" <<<"$v" || die "circlectl version before the upgrade: $v (want $oldver, pid $mainpid)"
pass "circled $oldver runs as MainPID $mainpid with $(tr '\n' ' ' <<<"$before")"

# live_upgrade WANTVERSION [--binary PATH]: circlectl upgrade, then check
# the unit, the watchers, the version and what systemd got. systemd logs the
# notifications it gets at debug level ("Got notification message from PID
# N (MAINPID=N)"): on meanwhile.
live_upgrade() {
	local want=$1 what="circlectl upgrade${2:+ $2 $3}" rc=0 out after_props v after journal sysd warn notes cursor
	shift
	cursor=$(x journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
	x systemd-analyze log-level debug
	out=$(ctl upgrade "$@" 2>&1) || rc=$?
	if [ "$rc" = 0 ]; then
		pass "$what: $out"
	else
		x journalctl -u circled --no-pager | tail -30 >&2
		die "$what: exit $rc: $out"
	fi
	poll_quiet 20 substate_running || true
	after_props=$(props)
	if [ "$(show MainPID)" = "$mainpid" ] && [ "$(show ActiveState)" = active ] && [ "$(show SubState)" = running ] &&
		[ "$(show NRestarts)" = 0 ] && [ "$(show ExecMainStartTimestamp)" = "$started" ]; then
		pass "after $what: same MainPID, active, running, no restart, same start time: $after_props"
	else
		fail "after $what: $after_props (want MainPID=$mainpid ActiveState=active SubState=running NRestarts=0 ExecMainStartTimestamp=$started)"
	fi
	v=$(ctl version)
	if grep -q "^circled $want .*pid $mainpid)" <<<"$v"; then
		pass "circlectl version: $(tail -1 <<<"$v")"
	else
		fail "circlectl version after $what: $v (want $want, pid $mainpid)"
	fi
	after=$(pids)
	if [ "$after" = "$before" ]; then
		pass "the 3 watcher processes kept their pids: $(tr '\n' ' ' <<<"$after")"
	else
		fail "watcher processes before $what: $(tr '\n' ' ' <<<"$before"); after: $(tr '\n' ' ' <<<"$after")"
	fi
	upjournal() { x journalctl --after-cursor "$cursor" --no-pager -o short-precise; }
	notified() { upjournal | grep -F "circled.service: Got notification message from PID $mainpid " | grep -F 'READY=1'; }
	poll_quiet 10 notified || true
	journal=$(upjournal)
	x systemd-analyze log-level info
	# systemd's own lines about the unit (not circled's output, nor D-Bus chatter).
	sysd=$(grep -E ' systemd\[1\]: ' <<<"$journal" | grep -F 'circled' | grep -vE 'Sent message|Got message|Bus bus-api' || true)
	if grep -qE '(Stopping|Stopped|Starting|Started) circled\.service|circled\.service: (Main process exited|Scheduled restart|Failed|Changed running ->|Deactivated|Killing)' <<<"$sysd"; then
		fail "systemd stopped, started or changed the state of circled.service during $what: $sysd"
	else
		pass "no stop, start, restart or state change of circled.service in the (debug) journal during $what"
	fi
	echo "note: systemd's lines about circled during $what (debug level):"
	sed 's/^/    | /' <<<"${sysd:-none}"
	warn=$(grep -iE 'warn|ignor|refus|not permitted|reject|not our child' <<<"$journal" | grep -vF ' circled[' || true)
	if [ -n "$warn" ]; then
		echo "note: journal lines with warnings during $what:"
		sed 's/^/    | /' <<<"$warn"
	fi
	# What the real systemd got through $NOTIFY_SOCKET from the new binary.
	notes=$(grep -F "circled.service: Got notification message from PID $mainpid " <<<"$journal" || true)
	if grep -qF "MAINPID=$mainpid" <<<"$notes" && grep -qF 'READY=1' <<<"$notes"; then
		pass "systemd accepted MAINPID=$mainpid and READY=1 from the upgraded circled (same pid)"
	else
		fail "systemd logged no MAINPID=$mainpid and READY=1 notification from pid $mainpid during $what: ${notes:-none}"
	fi
}

# 5. The live upgrade to another binary.
live_upgrade "$newver" --binary /new/circled

# 6. systemctl reload (ExecReload) after the upgrade.
if out=$(x systemctl reload circled 2>&1); then
	pass "systemctl reload circled after the upgrade: exit 0"
else
	x journalctl -u circled --no-pager | tail -20 >&2
	fail "systemctl reload circled after the upgrade: $out"
fi
poll_quiet 20 substate_running || true
if [ "$(show MainPID)" = "$mainpid" ] && [ "$(show ActiveState)" = active ] && [ "$(show NRestarts)" = 0 ] &&
	[ "$(pids)" = "$before" ]; then
	pass "after the reload: $(props), watcher pids unchanged"
else
	fail "after the reload: $(props); watchers: $(pids | tr '\n' ' ') (before: $(tr '\n' ' ' <<<"$before"))"
fi

# 6b. The package path: a package replaces /usr/bin/circled as dpkg does (a
# new file renamed over the old one), then `circlectl upgrade` without
# --binary executes the path circled was first started from.
docker cp "$work/circled-pkg" "$c:/usr/bin/circled.dpkg-new"
x mv /usr/bin/circled.dpkg-new /usr/bin/circled
live_upgrade "$pkgver"

# 7. systemctl stop: circled stops its watchers itself (KillMode=mixed).
t1=$(now_ms)
if out=$(x systemctl stop circled 2>&1); then
	took=$(($(now_ms) - t1))
	pass "systemctl stop circled: exit 0 in $took ms"
else
	fail "systemctl stop circled: $out"
fi
state=$(show ActiveState)
result=$(show Result)
left=$(unit_pids)
sleeps=$(x sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] && echo ${p#/proc/}; done' || true)
if [ "$state" = inactive ] && [ "$result" = success ] && [ -z "$left" ] && [ -z "$sleeps" ]; then
	pass "stopped cleanly: ActiveState=inactive Result=success, nothing left in the unit's cgroup, no sleep process in the container"
else
	fail "after systemctl stop: ActiveState=$state Result=$result, cgroup: $left, sleep pids: $sleeps"
fi
stopjournal=$(x journalctl -u circled --no-pager -o cat | tail -8)
if grep -qE 'SIGKILL|Killing process|timed out' <<<"$stopjournal"; then
	fail "systemd had to kill something: $stopjournal"
fi

echo "journal of circled.service:"
x journalctl -u circled --no-pager -o short-precise | sed 's/^/    | /'
echo "took $(($(now_ms) - t0)) ms in all"
if [ "$failed" != 0 ]; then
	echo "test-upgrade.sh: FAILED" >&2
	exit 1
fi
echo "test-upgrade.sh: all checks passed"
