#!/usr/bin/env bash
# packaging/test-deps.sh: installs, from Debian's packages, what `make test`
# needs and this machine lacks, and says so before it does. Today that is
# gcc (go test -race needs cgo). Tests that need an optional program they
# cannot get skip and say why; gcc is not optional.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "make test: ${need[*]} missing (go test -race needs cgo) and cannot be installed here (needs root and apt-get)" >&2
	exit 1
fi
echo "make test: installing ${need[*]} system-wide from Debian's packages (apt-get update first): go test -race needs cgo"
"$(dirname "$0")/apt-install.sh" "${need[@]}"
