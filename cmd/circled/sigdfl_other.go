//go:build !(linux && (amd64 || arm64 || 386 || arm || ppc64le || s390x || riscv64 || loong64))

package main

// resetRealtimeIgnored: only where the kernel's sigaction layout is known.
func resetRealtimeIgnored() {}
