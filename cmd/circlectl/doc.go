// Command circlectl controls a running circled over its control socket
// (see docs/API.md), and checks config files offline.
//
// Exit codes: 0 done; 1 the operation failed; 2 usage error; 3 no such
// watcher; 4 daemon not reachable.
package main
