#!/usr/bin/env bash
# packaging/packages.sh (`make packages`): .deb and .rpm of circled for
# linux/amd64 and linux/arm64 into dist/, with nfpm run as a Go tool
# (`go tool nfpm`, pinned in go.mod: nothing is downloaded outside the
# module proxy).
#
# Environment (all optional):
#   CROSS_DIR    prebuilt binaries in $CROSS_DIR/linux-ARCH/{circled,circlectl};
#                default bin/cross, (re)built here with `make cross` for the
#                two linux targets so that they match the checkout
#   DIST_DIR     output directory (default dist)
#   ARCHS        default "amd64 arm64"
#   FORMATS      default "deb rpm"
#   PKG_VERSION  package version (semver); default packaging/version.sh's:
#                tag v1.2.3 -> 1.2.3; otherwise VERSION~gitYYYYMMDD.N.gHASH
#                (".dirty" for local changes), which sorts by time and
#                before the release
#   MAINTAINER   "Name <email>" of the packages
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. packaging/sums.sh

GO=${GO:-go}
DIST_DIR=${DIST_DIR:-dist}
ARCHS=${ARCHS:-amd64 arm64}
FORMATS=${FORMATS:-deb rpm}
MAINTAINER=${MAINTAINER:-circle maintainers <circle-supervisor@users.noreply.github.com>}

# nfpm reads the version as semver: X.Y.Z~PRE becomes X.Y.Z-PRE for it, and
# it writes X.Y.Z~PRE back into the .deb and the .rpm, the same string as
# `circled --version`.
pkg_version() {
	local v
	v=$(sh packaging/version.sh)
	echo "${v/\~/-}"
}
PKG_VERSION=${PKG_VERSION:-$(pkg_version)}
# nfpm stamps file and package times from it: same commit, same packages.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

if [ -z "${CROSS_DIR:-}" ]; then
	CROSS_DIR=bin/cross
	targets=
	for a in $ARCHS; do targets+=" linux/$a"; done
	# Sub-make: VERSION/COMMIT given to `make packages` reach it through MAKEFLAGS.
	make --no-print-directory cross CROSS="${targets# }"
fi
for a in $ARCHS; do
	for p in circled circlectl; do
		[ -x "$CROSS_DIR/linux-$a/$p" ] || { echo "packages.sh: missing $CROSS_DIR/linux-$a/$p" >&2; exit 1; }
	done
done

mkdir -p "$DIST_DIR"
for a in $ARCHS; do
	rm -f "$DIST_DIR"/circled_*_"$a".deb
	[ "$a" = amd64 ] && rm -f "$DIST_DIR"/circled-*.x86_64.rpm
	[ "$a" = arm64 ] && rm -f "$DIST_DIR"/circled-*.aarch64.rpm
done
for a in $ARCHS; do
	for f in $FORMATS; do
		ARCH=$a BIN_DIR="$CROSS_DIR/linux-$a" PKG_VERSION=$PKG_VERSION MAINTAINER=$MAINTAINER \
			"$GO" tool nfpm package --config packaging/nfpm/nfpm.yaml --packager "$f" --target "$DIST_DIR/"
	done
done
write_sums "$DIST_DIR"
echo "packages.sh: circled ${PKG_VERSION/-/\~} for linux/{${ARCHS// /,}} ($FORMATS) and SHA256SUMS in $DIST_DIR/"
