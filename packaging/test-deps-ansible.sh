#!/usr/bin/env bash
# packaging/test-deps-ansible.sh: installs Debian's package `ansible` (which
# brings ansible-core, ansible-playbook and the community collections,
# community.general among them) so that cmd/circled's tests can run a
# playbook with community.general.supervisorctl against circled. It says
# what it installs before it does, and runs `apt-get update` first. Exits 0
# when ansible-playbook and community.general.supervisorctl are already
# there; exits 2 (and says why) when it cannot install: not root, no
# apt-get, or the install failed.
set -euo pipefail
have() {
	command -v ansible-playbook >/dev/null &&
		ansible-doc -t module community.general.supervisorctl >/dev/null 2>&1
}
have && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps-ansible: ansible (community.general.supervisorctl) missing and cannot be installed: not root" >&2
	exit 2
fi
if ! command -v apt-get >/dev/null; then
	echo "test-deps-ansible: ansible (community.general.supervisorctl) missing and cannot be installed: no apt-get" >&2
	exit 2
fi
echo "test-deps-ansible: installing Debian's package ansible (ansible-playbook, community.general) system-wide, after apt-get update" >&2
if ! "$(dirname "$0")/apt-install.sh" ansible; then
	echo "test-deps-ansible: apt-get update or install ansible failed" >&2
	exit 2
fi
if ! have; then
	echo "test-deps-ansible: installed ansible, but ansible-playbook or community.general.supervisorctl is still missing" >&2
	exit 2
fi
