package cgroup

import "errors"

// ErrUnsupported is returned by Setup where there is no cgroup v2.
var ErrUnsupported = errors.New("cgroup v2 is not available on this system")
