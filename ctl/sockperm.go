package ctl

import "errors"

// ErrUnsafeSocket is wrapped by the errors of Listen and of the client
// when the control socket, its directory, or a directory or symlink on the
// way to it could be replaced by someone other than the expected user
// (see checkSocketPath in sockperm_unix.go). Clients also wrap
// ErrUnreachable then: circlectl refuses to connect and exits 4.
var ErrUnsafeSocket = errors.New("unsafe control socket")
