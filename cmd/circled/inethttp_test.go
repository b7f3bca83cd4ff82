package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// listenInetHTTP enforces again what the config checks: no listener
// without credentials beyond loopback, judged on the host written and on
// the address actually bound.
func TestListenInetHTTPNeedsAuthBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		h    config.InetHTTP
		fail string
	}{
		{config.InetHTTP{Addr: "127.0.0.1:0"}, ""},
		{config.InetHTTP{Addr: "localhost:0"}, ""},
		{config.InetHTTP{Addr: "0.0.0.0:0", Username: "u", Password: "p"}, ""},
		{config.InetHTTP{Addr: "0.0.0.0:0"}, "a username and a password are required"},
		{config.InetHTTP{Addr: ":0"}, "a username and a password are required"},
		{config.InetHTTP{Addr: "[::]:0"}, "a username and a password are required"},
		{config.InetHTTP{Addr: "127.0.0.1:0", Username: "u"}, "set together"},
		{config.InetHTTP{Addr: "127.0.0.1:0", Password: "p"}, "set together"},
	} {
		ln, err := listenInetHTTP(c.h)
		if c.fail == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.h, err)
				continue
			}
			if c.h.Username == "" && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
				t.Errorf("%+v: bound to %s", c.h, ln.Addr())
			}
			ln.Close()
			continue
		}
		if err == nil {
			ln.Close()
			t.Errorf("%+v: listening, want %q", c.h, c.fail)
		} else if !strings.Contains(err.Error(), c.fail) {
			t.Errorf("%+v: %v, want %q", c.h, err, c.fail)
		}
	}
}

// A browser's request (Origin header) is refused, and so is a Host that
// is not loopback on a listener without credentials (DNS rebinding).
func TestInetHTTPRefusesBrowsers(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, c := range []struct {
		name   string
		noAuth bool
		host   string
		origin string
		want   int
	}{
		{"supervisorctl, loopback", true, "127.0.0.1:9001", "", http.StatusTeapot},
		{"localhost", true, "localhost:9001", "", http.StatusTeapot},
		{"browser page", true, "127.0.0.1:9001", "http://evil.example", http.StatusForbidden},
		{"dns rebinding", true, "evil.example:9001", "", http.StatusForbidden},
		{"rebinding with credentials set", false, "evil.example:9001", "", http.StatusTeapot},
		{"browser page with credentials set", false, "127.0.0.1:9001", "null", http.StatusForbidden},
	} {
		r := httptest.NewRequest("POST", "/RPC2", strings.NewReader("<methodCall/>"))
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		rec := httptest.NewRecorder()
		notFromBrowsers(ok, c.noAuth).ServeHTTP(rec, r)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
	}
}
