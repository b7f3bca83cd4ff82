// Package testhelper holds what circle's tests share: polling with a
// deadline instead of sleeping, a buffer safe to read while something
// writes to it, and short temporary directories for unix sockets. It is
// imported by tests only; sigtrap (a command) is the tests' signal- and
// process-shaped helper program.
package testhelper
