package ctl

// rootSocketPath is root's default socket (FHS: /run).
const rootSocketPath = "/run/circled/circled.sock"
