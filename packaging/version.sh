#!/bin/sh
# packaging/version.sh: the one version of this checkout, used by the
# Makefile (stamped into both binaries: `circled --version`, `circlectl
# version`), dist archives and packages.
#
#   a clean checkout of tag vX.Y.Z     -> X.Y.Z
#   anything else                      -> BASE~gitYYYYMMDD.N.gHASH[.dirty]
#
# BASE is the VERSION file (the next release). YYYYMMDD is the UTC date of
# HEAD's commit and N the number of commits up to HEAD, so snapshots sort by
# time in dpkg and rpm, and every snapshot sorts before the release BASE
# (the tilde). Without git: BASE~dev.
set -eu
cd "$(dirname "$0")/.."
base=$(tr -d ' \t\r\n' < VERSION)
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "$base~dev"
	exit 0
fi
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)
if [ -n "$tag" ] && [ -z "$dirty" ]; then
	echo "${tag#v}"
	exit 0
fi
date=$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd HEAD)
n=$(git rev-list --count HEAD)
hash=$(git rev-parse --short HEAD)
echo "$base~git$date.$n.g$hash$dirty"
