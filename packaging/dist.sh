#!/usr/bin/env bash
# packaging/dist.sh (`make dist`, after `make cross`): one archive per
# platform built in bin/cross/OS-ARCH/ into dist/:
#   circled-VERSION-OS-ARCH.tar.gz (circled-VERSION-windows-ARCH.zip)
# each holding, under circled-VERSION-OS-ARCH/: circled, circlectl (.exe on
# Windows), README.md, LICENSE, CHANGELOG.md and the example config conf.d/.
# Then dist/SHA256SUMS over every archive and package in dist/
# (check with `cd dist && sha256sum -c SHA256SUMS`).
#
# Archives are reproducible: entries sorted, owner root, mtimes set to the
# commit time (or $SOURCE_DATE_EPOCH).
#
# Environment: VERSION (default packaging/version.sh's, as
# the Makefile stamps it), CROSS_DIR (bin/cross), DIST_DIR (dist).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. packaging/sums.sh

GO=${GO:-go}
CROSS_DIR=${CROSS_DIR:-bin/cross}
DIST_DIR=${DIST_DIR:-dist}
VERSION=${VERSION:-$(sh packaging/version.sh)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

[ -d "$CROSS_DIR" ] || { echo "dist.sh: no $CROSS_DIR: run make cross (make dist does)" >&2; exit 1; }

# zipdir OUT DIR: zip DIR (relative to the cwd) into OUT, with zip(1) when
# installed, else python3's zipfile, else Go's archive/zip.
zipdir() {
	local out=$1 dir=$2
	if command -v zip >/dev/null 2>&1; then
		find "$dir" -print | LC_ALL=C sort | zip -X -q -9 "$out" -@
	elif python3 -c 'import zipfile' >/dev/null 2>&1; then
		python3 - "$out" "$dir" <<'PY'
import os, sys, zipfile
out, top = sys.argv[1], sys.argv[2]
paths = []
for d, dirs, files in os.walk(top):
    paths.append(d + "/")
    paths += [os.path.join(d, f) for f in files]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(paths):
        z.write(p.rstrip("/"), p)
PY
	else
		local gz
		gz=$(mktemp -d)
		cat >"$gz/go.mod" <<'GOMOD'
module zipdir
go 1.21
GOMOD
		cat >"$gz/main.go" <<'GOSRC'
package main

import (
	"archive/zip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	f, err := os.Create(os.Args[1])
	check(err)
	z := zip.NewWriter(f)
	check(filepath.WalkDir(os.Args[2], func(p string, d fs.DirEntry, err error) error {
		check(err)
		info, err := d.Info()
		check(err)
		h, err := zip.FileInfoHeader(info)
		check(err)
		h.Name = filepath.ToSlash(p)
		if d.IsDir() {
			h.Name += "/"
		} else {
			h.Method = zip.Deflate
		}
		w, err := z.CreateHeader(h)
		check(err)
		if !d.IsDir() {
			src, err := os.Open(p)
			check(err)
			_, err = io.Copy(w, src)
			check(err)
			src.Close()
		}
		return nil
	}))
	check(z.Close())
	check(f.Close())
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
GOSRC
		(cd "$gz" && CGO_ENABLED=0 "$GO" build -o zipdir .) && "$gz/zipdir" "$out" "$dir"
		rm -rf "$gz"
	fi
}

mkdir -p "$DIST_DIR"
dist=$(cd "$DIST_DIR" && pwd)
rm -f "$dist"/circled-*.tar.gz "$dist"/circled-*.zip
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

n=0
for bindir in "$CROSS_DIR"/*/; do
	platform=$(basename "$bindir") # OS-ARCH
	os=${platform%%-*}
	ext=
	[ "$os" = windows ] && ext=.exe
	for p in circled circlectl; do
		[ -f "$bindir/$p$ext" ] || { echo "dist.sh: missing $bindir$p$ext" >&2; exit 1; }
	done
	name=circled-$VERSION-$platform
	d=$stage/$name
	mkdir -p "$d/conf.d"
	install -m 0755 "$bindir/circled$ext" "$bindir/circlectl$ext" "$d/"
	install -m 0644 README.md LICENSE CHANGELOG.md "$d/"
	install -m 0644 conf.d/*.ini "$d/conf.d/"
	find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	if [ "$os" = windows ]; then
		(cd "$stage" && zipdir "$dist/$name.zip" "$name")
		echo "  $DIST_DIR/$name.zip"
	else
		tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
			--mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz"
		echo "  $DIST_DIR/$name.tar.gz"
	fi
	n=$((n + 1))
done
write_sums "$dist"
echo "dist.sh: $n archives and SHA256SUMS in $DIST_DIR/"
