//go:build unix && !linux

package ctl

// rootSocketPath is root's default socket; macOS and the BSDs keep /var/run.
const rootSocketPath = "/var/run/circled/circled.sock"
