#!/usr/bin/env bash
# scripts/fuzz.sh (`make fuzz`): runs every Go fuzz target of the module
# (each `func FuzzX` in a _test.go file) for FUZZTIME each (default 30s; CI
# uses 10s). New inputs that fail are written to the package's
# testdata/fuzz/FuzzX/ by go test: commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
found=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz $pkg $name for $FUZZTIME"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"
	found=$((found + 1))
done < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/func //' | sort -u)
echo "fuzz: $found targets, $FUZZTIME each"
