//go:build unix

package main

import (
	"net"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/supervisor/config"
	"golang.org/x/sys/unix"
)

// A TCP listener handed over by a live upgrade goes through the same
// checks as one the new binary binds: handed a listener bound beyond
// loopback for a config without credentials, the new binary refuses it
// (as a fresh start would), and a web config that no longer validates
// refuses metrics_listen before its handed listener is used.
func TestHandedTCPListenerChecked(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("SKIP: cannot listen on 0.0.0.0: %v", err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	handed := map[string]int{"inet_http_server": fd}
	h := config.InetHTTP{Addr: "127.0.0.1:9001"}
	got, err := checkedInetHTTP(h, func() (net.Listener, error) {
		return tcpListener(handed, "inet_http_server", func() (net.Listener, error) {
			t.Fatal("bound a new listener although one was handed over")
			return nil, nil
		})
	})
	if err == nil {
		got.Close()
		t.Fatalf("a handed-over listener on %s without credentials was accepted", ln.Addr())
	}
	if !strings.Contains(err.Error(), "beyond loopback") {
		t.Fatalf("error = %v, want the beyond-loopback refusal", err)
	}
	if _, ok := handed["inet_http_server"]; ok {
		t.Fatalf("the handed descriptor was not taken")
	}
	if err := validateWebConfig("/nonexistent/circle-web-config.yml"); err == nil {
		t.Fatalf("a missing metrics_web_config validated")
	}
}
