#!/usr/bin/env bash
# packaging/apt-install.sh PKG...: installs PKG... from Debian's packages
# (apt-get update first), for the test-deps scripts. Tests of several Go
# packages run at once and may each install something: one install at a
# time (flock on this script itself, so no lock file is created anywhere a
# user could plant a symlink), and apt-get waits up to 10 minutes for
# dpkg's lock held by some other apt instead of failing at once ("Could not
# get lock"). apt-get runs without the lock's descriptor, so nothing it
# starts (a package's service) keeps holding it. Its output goes to stderr;
# the exit status is apt-get's.
set -euo pipefail
exec 9<"$0"
if command -v flock >/dev/null; then
	flock 9
fi
export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
apt-get -o DPkg::Lock::Timeout=600 update -qq 9<&- >&2
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" 9<&- >&2
