#!/usr/bin/env bash
# packaging/test-deps-ssh.sh: installs Debian's `openssh-server` (and
# `openssh-client`) so that circlectl's remote-control test can run a real
# sshd on 127.0.0.1 (cmd/circlectl/ssh_linux_test.go). It says what it
# installs before it does, and runs apt-get update first. Exits 0 when
# /usr/sbin/sshd, ssh and ssh-keygen are already there; exits 2 (and says
# why) when it cannot install: not root, or no apt-get. The installed ssh
# service is not started by this script (RUNLEVEL=1 keeps invoke-rc.d from
# starting it; a policy-rc.d, as in containers, does too); the test starts
# its own sshd on its own port and configuration.
set -euo pipefail
have() { [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; }
have && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps-ssh: sshd missing and cannot be installed: not root" >&2
	exit 2
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps-ssh: sshd missing and cannot be installed: no apt-get" >&2
	exit 2
fi
echo "test-deps-ssh: installing Debian's packages openssh-server and openssh-client (sshd, ssh, ssh-keygen) system-wide (apt-get update first)" >&2
"$(dirname "$0")/apt-install.sh" openssh-server openssh-client
have
