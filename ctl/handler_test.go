package ctl_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		kind   string // error kind; "" for a 2xx
		call   string // the backend's last call; "" = not checked
		want   string // substring of the reply body
	}{
		{"status all", "GET", "/v1/watchers", "", 200, "", "Status []", `{"watchers":[{"name":"web","state":"active","numprocesses":1,"processes":[{"wid":1,"pid":1000,"state":"running","started_at":"2025-01-02T03:04:05Z","restarts":0,"last_exit":{"code":0,"signal":""}`},
		{"status glob", "GET", "/v1/watchers?name=w*&name=db", "", 200, "", "Status [w* db]", `"name":"worker"`},
		{"status unknown", "GET", "/v1/watchers?name=nope", "", 404, ctl.KindNoSuchWatcher, "", "nope"},
		{"status bad query", "GET", "/v1/watchers?names=web", "", 400, ctl.KindBadRequest, "", "names"},
		{"status one", "GET", "/v1/watchers/web", "", 200, "", "Status [web]", `"name":"web"`},
		{"status descendants", "GET", "/v1/watchers?name=web&descendants=1", "", 200, "", "Status [web] descendants", `"name":"web"`},
		{"status descendants off", "GET", "/v1/watchers?descendants=false", "", 200, "", "Status []", `"name":"web"`},
		{"status one descendants", "GET", "/v1/watchers/web?descendants=true", "", 200, "", "Status [web] descendants", `"name":"web"`},
		{"status descendants bad", "GET", "/v1/watchers?descendants=yes", "", 400, ctl.KindBadRequest, "", "descendants must be 1 or 0"},
		{"status descendants twice", "GET", "/v1/watchers?descendants=1&descendants=1", "", 400, ctl.KindBadRequest, "", "given 2 times"},
		{"status one takes no name", "GET", "/v1/watchers/web?name=db", "", 400, ctl.KindBadRequest, "", `name\" (want descendants)`},
		{"stopped watcher has processes list", "GET", "/v1/watchers/db", "", 200, "", "", `"state":"stopped"`},
		{"list", "GET", "/v1/list", "", 200, "", "List", `{"watchers":["web","worker","db"]}`},
		{"start all, wait by default", "POST", "/v1/start", "", 200, "", "Start [] true", `{"watchers":["web","worker","db"]}`},
		{"stop no wait", "POST", "/v1/stop", `{"names":["web"],"wait":false}`, 200, "", "Stop [web] false", `{"watchers":["web"]}`},
		{"restart", "POST", "/v1/restart", `{"names":["web"]}`, 200, "", "Restart [web] true", ""},
		{"reload glob", "POST", "/v1/reload", `{"names":["w*"],"wait":true}`, 200, "", "Reload [w*] true", `["web","worker"]`},
		{"start unknown", "POST", "/v1/start", `{"names":["nope"]}`, 404, ctl.KindNoSuchWatcher, "", "no such watcher: nope"},
		{"unknown field", "POST", "/v1/start", `{"nmes":["web"]}`, 400, ctl.KindBadRequest, "", "nmes"},
		{"malformed json", "POST", "/v1/start", `{"names":`, 400, ctl.KindBadRequest, "", "malformed"},
		{"wrong type", "POST", "/v1/start", `{"names":"web"}`, 400, ctl.KindBadRequest, "", "malformed"},
		{"two values", "POST", "/v1/start", `{} {}`, 400, ctl.KindBadRequest, "", "after the JSON value"},
		{"empty name", "POST", "/v1/start", `{"names":[""]}`, 400, ctl.KindBadRequest, "", "empty"},
		{"reloadconfig", "POST", "/v1/reloadconfig", "", 200, "", "ReloadConfig", `{"added":[],"removed":[],"restarted":[],"scaled":[],"updated":[],"unchanged":[]}`},
		{"signal", "POST", "/v1/watchers/web/signal", `{"signal":"HUP","pid":3,"children":true}`, 200, "", "Signal web HUP 3 true", `{"watchers":["web"]}`},
		{"signal missing", "POST", "/v1/watchers/web/signal", `{}`, 400, ctl.KindBadRequest, "", "missing signal"},
		{"signal negative pid", "POST", "/v1/watchers/web/signal", `{"signal":"HUP","pid":-1}`, 400, ctl.KindBadRequest, "", "pid"},
		{"signal bad name", "POST", "/v1/watchers/web/signal", `{"signal":"BOGUS"}`, 400, ctl.KindBadRequest, "", "unknown signal"},
		{"signal unknown watcher", "POST", "/v1/watchers/nope/signal", `{"signal":"HUP"}`, 404, ctl.KindNoSuchWatcher, "", ""},
		{"incr default", "POST", "/v1/watchers/web/incr", "", 200, "", "Incr web 1", `"numprocesses":2`},
		{"incr n", "POST", "/v1/watchers/web/incr", `{"n":3}`, 200, "", "Incr web 3", `"numprocesses":4`},
		{"decr", "POST", "/v1/watchers/web/decr", `{"n":1}`, 200, "", "Incr web -1", `{"watchers":["web"]}`},
		{"incr zero", "POST", "/v1/watchers/web/incr", `{"n":0}`, 400, ctl.KindBadRequest, "", "n must be 1..100000"},
		{"decr negative", "POST", "/v1/watchers/web/decr", `{"n":-2}`, 400, ctl.KindBadRequest, "", "n must be 1..100000"},
		// Bounds: n and the resulting count are at most MaxProcesses, and
		// a refused incr never reaches the backend's Incr.
		{"incr huge", "POST", "/v1/watchers/web/incr", `{"n":9223372036854775806}`, 400, ctl.KindBadRequest, "", "n must be 1..100000 (the maximum number of processes of a watcher), got 9223372036854775806"},
		{"incr max int", "POST", "/v1/watchers/web/incr", `{"n":9223372036854775807}`, 400, ctl.KindBadRequest, "", "1..100000"},
		{"decr huge", "POST", "/v1/watchers/web/decr", `{"n":100001}`, 400, ctl.KindBadRequest, "", "1..100000"},
		{"incr over the total", "POST", "/v1/watchers/web/incr", `{"n":100000}`, 400, ctl.KindBadRequest, "NumProcesses web",
			"web has 1 processes: 100000 more would exceed the maximum of 100000 processes per watcher"},
		{"incr up to the total", "POST", "/v1/watchers/web/incr", `{"n":99999}`, 200, "", "Incr web 99999", `"numprocesses":100000`},
		{"decr the maximum", "POST", "/v1/watchers/web/decr", `{"n":100000}`, 200, "", "Incr web -100000", `{"watchers":["web"]}`},
		{"incr unknown watcher", "POST", "/v1/watchers/nope/incr", `{"n":1}`, 404, ctl.KindNoSuchWatcher, "", "nope"},
		{"numprocesses", "GET", "/v1/watchers/web/numprocesses", "", 200, "", "NumProcesses web", `"numprocesses":1`},
		{"escaped name", "GET", "/v1/watchers/a%2Fb/numprocesses", "", 404, ctl.KindNoSuchWatcher, "NumProcesses a/b", ""},
		{"stats", "GET", "/v1/stats?name=web", "", 200, "", "Stats [web]", `{"watchers":[{"name":"web","processes":[{"wid":1,"pid":1000,"cpu":12.5,"rss":3145728}]}]}`},
		{"stats stopped", "GET", "/v1/stats?name=db", "", 200, "", "", `"processes":[]`},
		{"quit", "POST", "/v1/quit", `{"wait":false}`, 200, "", "Quit false", `{"quitting":true}`},
		{"quit default wait", "POST", "/v1/quit", ``, 200, "", "Quit true", ``},
		{"version", "GET", "/v1/version", "", 200, "", "Version", `{"version":"1.2.3","commit":"abc","go_version":"go1.x","pid":42}`},
		{"wrong method", "GET", "/v1/start", "", 405, ctl.KindBadRequest, "", "not allowed"},
		{"unknown route", "GET", "/v1/nope", "", 404, ctl.KindNotFound, "", "no route"},
		{"outside v1", "GET", "/", "", 404, ctl.KindNotFound, "", ""},
		{"backend panic", "POST", "/v1/watchers/web/signal", `{"signal":"panic"}`, 500, ctl.KindInternal, "", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ctltest.NewFake("web", "worker", "db:stopped")
			hc := rawClient(startServer(t, f))
			req, err := http.NewRequest(tt.method, "http://circled"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
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
			if tt.kind != "" {
				var er ctl.ErrorReply
				dec := json.NewDecoder(strings.NewReader(string(body)))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&er); err != nil {
					t.Fatalf("error body %s: %v", body, err)
				}
				if er.Kind != tt.kind || er.Error == "" {
					t.Errorf("error reply %+v, want kind %s", er, tt.kind)
				}
			}
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("body %s\nwant it to contain %s", body, tt.want)
			}
			if tt.call != "" {
				if got := f.LastCall(); got != tt.call {
					t.Errorf("backend call %q, want %q", got, tt.call)
				}
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow header")
			}
		})
	}
}

func TestHandlerErrorKinds(t *testing.T) {
	tests := []struct {
		err    error
		status int
		kind   string
	}{
		{fmt.Errorf("%w: x.ini:3: cmd: required", ctl.ErrBadConfig), 422, ctl.KindBadConfig},
		{fmt.Errorf("reload: %w", ctl.ErrShuttingDown), 503, ctl.KindShuttingDown},
		{fmt.Errorf("wrapped: %w", ctl.ErrNoSuchWatcher), 404, ctl.KindNoSuchWatcher},
		{errors.New("disk on fire"), 500, ctl.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f := ctltest.NewFake("web")
			f.ReloadErr = tt.err
			resp, err := rawClient(startServer(t, f)).Post("http://circled/v1/reloadconfig", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var er ctl.ErrorReply
			if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || er.Kind != tt.kind || er.Error != tt.err.Error() {
				t.Errorf("got %d %+v, want %d %s %q", resp.StatusCode, er, tt.status, tt.kind, tt.err)
			}
		})
	}
}

func TestHandlerShuttingDown(t *testing.T) {
	f := ctltest.NewFake("web")
	f.Quitting = true
	resp, err := rawClient(startServer(t, f)).Post("http://circled/v1/restart", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

// A reload whose watchers did not all come up answers 200 with the
// summary, each failure under "failed", and "error" saying which.
func TestHandlerReloadConfigFailed(t *testing.T) {
	f := ctltest.NewFake("web")
	f.Summary = ctl.ReloadSummary{Restarted: []string{"web", "db"}, Added: []string{"new"},
		Failed: map[string]string{"web": "web is fatal: spawn failed 1 times: exec: no such file", "new": "new.1: exec: no such file"}}
	resp, err := rawClient(startServer(t, f)).Post("http://circled/v1/reloadconfig", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `{"added":["new"],"removed":[],"restarted":["web","db"],"scaled":[],"updated":[],"unchanged":[],` +
		`"failed":{"new":"new.1: exec: no such file","web":"web is fatal: spawn failed 1 times: exec: no such file"},` +
		`"error":"2 watchers failed to apply: new, web"}` + "\n"
	if resp.StatusCode != 200 || string(body) != want {
		t.Errorf("got %d %s\nwant 200 %s", resp.StatusCode, body, want)
	}
}
