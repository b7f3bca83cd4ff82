package buildinfo

import "runtime"

// Set by -ldflags; the defaults describe an unstamped `go build`.
var (
	Version = "dev"
	Commit  = "unknown"
)

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// String is the one-line form printed by `circled --version`.
func String(prog string) string {
	return prog + " " + Version + " (commit " + Commit + ", " + GoVersion() + ")"
}
