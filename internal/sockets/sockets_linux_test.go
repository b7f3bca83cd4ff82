package sockets

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInterface(t *testing.T) {
	c := inet("lo", "127.0.0.1", 0)
	c.Interface = "lo"
	s, err := Bind(c)
	if errors.Is(err, unix.EPERM) {
		t.Skipf("SO_BINDTODEVICE needs CAP_NET_RAW here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dev, err := unix.GetsockoptString(int(s.File.Fd()), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	if err != nil || dev != "lo" {
		t.Errorf("bound to %q, %v", dev, err)
	}
	roundTrip(t, s, "tcp", s.Addr)
	c.Interface = "nosuchif0"
	if _, err := Bind(c); err == nil || !strings.Contains(err.Error(), "SO_BINDTODEVICE nosuchif0") {
		t.Errorf("unknown interface: %v", err)
	}
}
