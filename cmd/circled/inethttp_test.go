package main

import (
	"net"
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
