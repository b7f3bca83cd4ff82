// Package ctl is circled's control protocol: the wire types, the HTTP+JSON
// handler that serves them over a Backend, the client circlectl uses, and
// the listeners (a unix socket; a named pipe on Windows).
//
// ctl never imports the supervisor: cmd/circled adapts the supervisor to
// Backend. Routes are documented in docs/API.md.
package ctl
