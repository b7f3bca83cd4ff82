package ctl

// defaultSocketPath is the named pipe circled listens on by default.
func defaultSocketPath() string { return `\\.\pipe\circled` }
