package main

import (
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// circlectl sockets: one line per socket, each watcher that uses it as
// WATCHER:FD; --json is the daemon's document; status --json has the
// same list.
func TestSockets(t *testing.T) {
	f := ctltest.NewFake("web", "worker")
	f.SetSockets(
		ctl.Socket{Name: "spare", Address: "/run/spare.sock", Family: "AF_UNIX", Type: "SOCK_STREAM", FD: 8},
		ctl.Socket{Name: "web", Address: "127.0.0.1:43121", Family: "AF_INET", Type: "SOCK_STREAM", FD: 7,
			Watchers: []ctl.SocketUse{{Watcher: "web", FD: 3}, {Watcher: "worker", FD: 4}}},
	)
	sock := startDaemon(t, f)

	code, stdout, stderr := circlectl("--socket", sock, "sockets")
	want := "NAME   ADDRESS          FD  WATCHERS\n" +
		"spare  /run/spare.sock  8   -\n" +
		"web    127.0.0.1:43121  7   web:3,worker:4\n"
	if code != 0 || stdout != want {
		t.Errorf("sockets: exit %d, stdout\n%s\nwant\n%s\nstderr %s", code, stdout, want, stderr)
	}

	const list = `[{"name":"spare","address":"/run/spare.sock","family":"AF_UNIX","type":"SOCK_STREAM","fd":8,"watchers":[]},` +
		`{"name":"web","address":"127.0.0.1:43121","family":"AF_INET","type":"SOCK_STREAM","fd":7,"watchers":[{"watcher":"web","fd":3},{"watcher":"worker","fd":4}]}]`
	code, stdout, stderr = circlectl("--socket", sock, "sockets", "--json")
	if want := `{"sockets":` + list + "}\n"; code != 0 || stdout != want {
		t.Errorf("sockets --json: exit %d, stdout\n%s\nwant\n%s\nstderr %s", code, stdout, want, stderr)
	}

	code, stdout, stderr = circlectl("--socket", sock, "status", "--json", "worker")
	if want := `],"sockets":` + list + "}\n"; code != 0 || len(stdout) < len(want) || stdout[len(stdout)-len(want):] != want {
		t.Errorf("status --json: exit %d, stdout\n%s\nwant it to end with\n%s\nstderr %s", code, stdout, want, stderr)
	}
}

// Against no daemon, sockets exits 4 like every command.
func TestSocketsUnreachable(t *testing.T) {
	code, _, stderr := circlectl("--socket", testhelper.ShortDir(t)+"/none.sock", "sockets")
	if code != exitUnreachable {
		t.Errorf("exit %d, want %d (stderr %q)", code, exitUnreachable, stderr)
	}
}
