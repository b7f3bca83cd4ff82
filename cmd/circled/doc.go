// Command circled is the supervisor daemon: it reads a circus-style ini
// config, runs every watcher's processes and serves the control socket
// that circlectl talks to.
package main
