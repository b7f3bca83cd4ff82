package ctl_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// fakeSockets are two sockets: web used by two watchers, spare by none.
var fakeSockets = []ctl.Socket{
	{Name: "spare", Address: "/run/spare.sock", Family: "AF_UNIX", Type: "SOCK_STREAM", FD: 8},
	{Name: "web", Address: "127.0.0.1:43121", Family: "AF_INET", Type: "SOCK_STREAM", FD: 7,
		Watchers: []ctl.SocketUse{{Watcher: "web", FD: 3}, {Watcher: "worker", FD: 4}}},
}

const (
	spareJSON = `{"name":"spare","address":"/run/spare.sock","family":"AF_UNIX","type":"SOCK_STREAM","fd":8,"watchers":[]}`
	webJSON   = `{"name":"web","address":"127.0.0.1:43121","family":"AF_INET","type":"SOCK_STREAM","fd":7,` +
		`"watchers":[{"watcher":"web","fd":3},{"watcher":"worker","fd":4}]}`
)

// GET /v1/sockets: every socket, each list an array (never null); status
// carries the same list whatever watchers it names.
func TestHandlerSockets(t *testing.T) {
	tests := []struct {
		name    string
		sockets []ctl.Socket
		method  string
		path    string
		status  int
		kind    string
		want    string // the whole body (substring when kind is set)
	}{
		{"none", nil, "GET", "/v1/sockets", 200, "", `{"sockets":[]}`},
		{"two", fakeSockets, "GET", "/v1/sockets", 200, "", `{"sockets":[` + spareJSON + `,` + webJSON + `]}`},
		{"head", fakeSockets, "HEAD", "/v1/sockets", 200, "", ``},
		{"query", fakeSockets, "GET", "/v1/sockets?name=web", 400, ctl.KindBadRequest, "takes no query parameters"},
		{"post", fakeSockets, "POST", "/v1/sockets", 405, ctl.KindBadRequest, "not allowed"},
		{"one is not a route", fakeSockets, "GET", "/v1/sockets/web", 404, ctl.KindNotFound, "no route"},
		{"status none", nil, "GET", "/v1/watchers?name=db", 200, "",
			`{"watchers":[{"name":"db","state":"stopped","numprocesses":1,"processes":[{"wid":1,"pid":0,"state":"exited","started_at":"0001-01-01T00:00:00Z","restarts":3,"last_exit":{"code":1,"signal":""},"dropped_bytes":0,"planned_restarts":0,"ready":false,"health":"","descendants":0}],"priority":0,"autostart":false}],"sockets":[]}`},
		{"status names one watcher, all sockets", fakeSockets, "GET", "/v1/watchers?name=db", 200, "",
			`{"watchers":[{"name":"db","state":"stopped","numprocesses":1,"processes":[{"wid":1,"pid":0,"state":"exited","started_at":"0001-01-01T00:00:00Z","restarts":3,"last_exit":{"code":1,"signal":""},"dropped_bytes":0,"planned_restarts":0,"ready":false,"health":"","descendants":0}],"priority":0,"autostart":false}],"sockets":[` + spareJSON + `,` + webJSON + `]}`},
		{"status of one watcher", fakeSockets, "GET", "/v1/watchers/web", 200, "", `],"sockets":[` + spareJSON + `,` + webJSON + `]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ctltest.NewFake("web", "worker", "db:stopped")
			f.SetSockets(tt.sockets...)
			req, err := http.NewRequest(tt.method, "http://circled"+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rawClient(startServer(t, f)).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			switch {
			case tt.kind != "":
				if !strings.Contains(string(body), `"kind":"`+tt.kind+`"`) || !strings.Contains(string(body), tt.want) {
					t.Errorf("body %s\nwant kind %s and %q", body, tt.kind, tt.want)
				}
			case tt.method == "HEAD":
				if len(body) != 0 {
					t.Errorf("HEAD body %q", body)
				}
			case strings.HasPrefix(tt.want, "{"):
				if string(body) != tt.want+"\n" {
					t.Errorf("body\n%s\nwant\n%s", body, tt.want)
				}
			default:
				if !strings.Contains(string(body), tt.want) {
					t.Errorf("body %s\nwant it to contain %s", body, tt.want)
				}
			}
		})
	}
}

// The client reads back what the fake holds; a daemon without the route
// (older than it) is an error saying so, not an empty list.
func TestClientSockets(t *testing.T) {
	f := ctltest.NewFake("web")
	f.SetSockets(fakeSockets...)
	c := ctl.NewClient(startServer(t, f))
	ctx := context.Background()
	ss, err := c.Sockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ctl.Socket{fakeSockets[0], fakeSockets[1]}
	want[0].Watchers = []ctl.SocketUse{}
	if !reflect.DeepEqual(ss, want) {
		t.Errorf("Sockets = %+v\nwant %+v", ss, want)
	}
	if got := f.LastCall(); got != "Sockets" {
		t.Errorf("backend call %q", got)
	}
	st, err := c.Status(ctx, []string{"web"})
	if err != nil || !reflect.DeepEqual(st.Sockets, want) {
		t.Errorf("Status sockets = %+v, %v", st.Sockets, err)
	}

	old := ctl.NewClient(olderDaemon(t))
	_, err = old.Sockets(ctx)
	var ce *ctl.Error
	if !errors.As(err, &ce) || ce.Kind != ctl.KindNotFound ||
		err.Error() != "no route GET /v1/sockets (circled is older than circlectl sockets)" {
		t.Errorf("Sockets from an older daemon: %v", err)
	}
}

// olderDaemon is a socket served as a circled older than GET /v1/sockets
// answers it.
func olderDaemon(t *testing.T) string {
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no route GET /v1/sockets","kind":"not_found"}`+"\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}
