// Package buildinfo holds the version stamped into both binaries by the
// Makefile's -ldflags (-X .../buildinfo.Version=... -X .../buildinfo.Commit=...).
package buildinfo
