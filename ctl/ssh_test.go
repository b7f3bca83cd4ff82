package ctl_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		in   string
		want ctl.SSHHost
		name string // String(); "" = in
	}{
		{"ssh://h1", ctl.SSHHost{Host: "h1"}, ""},
		{"ssh://alice@h1.example.org:2222", ctl.SSHHost{User: "alice", Host: "h1.example.org", Port: 2222}, ""},
		{"ssh://root@127.0.0.1:22/", ctl.SSHHost{User: "root", Host: "127.0.0.1", Port: 22}, "ssh://root@127.0.0.1:22"},
		{"ssh://[::1]:2222", ctl.SSHHost{Host: "::1", Port: 2222}, ""},
		{"ssh://[fe80::1]", ctl.SSHHost{Host: "fe80::1"}, ""},
		{"ssh://h1?circlectl=/opt/circle/bin/circlectl", ctl.SSHHost{Host: "h1", Circlectl: "/opt/circle/bin/circlectl"}, "ssh://h1"},
	}
	for _, tt := range tests {
		h, err := ctl.ParseHost(tt.in)
		if err != nil || !reflect.DeepEqual(*h, tt.want) {
			t.Errorf("ParseHost(%q) = %+v, %v; want %+v", tt.in, h, err, tt.want)
			continue
		}
		name := tt.name
		if name == "" {
			name = tt.in
		}
		if h.String() != name {
			t.Errorf("ParseHost(%q).String() = %q, want %q", tt.in, h.String(), name)
		}
	}
	for _, in := range []string{"", "h1", "unix:///run/c.sock", "tcp://h1:1", "ssh://", "ssh://-oProxyCommand=x",
		"ssh://-l@h1", "ssh://u:pw@h1", "ssh://@h1", "ssh://h1:0", "ssh://h1:65536", "ssh://h1:x", "ssh://h1:",
		"ssh://h1/path", "ssh://h1#f", "ssh://h1?x=1", "ssh://h1?circlectl=", "ssh://h1?circlectl=a&circlectl=b", "ssh:h1"} {
		if h, err := ctl.ParseHost(in); err == nil {
			t.Errorf("ParseHost(%q) = %+v, want an error", in, h)
		} else if !strings.Contains(err.Error(), "want ssh://[user@]host[:port]") {
			t.Errorf("ParseHost(%q): %v", in, err)
		}
	}
}

func TestSSHCommand(t *testing.T) {
	t.Setenv(ctl.SSHCommandEnv, "")
	t.Setenv(ctl.SSHCirclectlEnv, "")
	h := &ctl.SSHHost{User: "alice", Host: "h1", Port: 2222}
	got := h.Command("--socket", "/run/my dir/c.sock", "--config", "it's.ini")
	want := []string{"ssh", "-o", "ConnectTimeout=10", "-l", "alice", "-p", "2222", "--", "h1",
		`circlectl --socket '/run/my dir/c.sock' --config 'it'\''s.ini' dial-stdio`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Command = %q\nwant      %q", got, want)
	}

	t.Setenv(ctl.SSHCommandEnv, " /usr/bin/ssh  -F ./cfg ")
	t.Setenv(ctl.SSHCirclectlEnv, "/opt/bin/circlectl")
	got = (&ctl.SSHHost{Host: "h1"}).Command()
	want = []string{"/usr/bin/ssh", "-F", "./cfg", "-o", "ConnectTimeout=10", "--", "h1", "/opt/bin/circlectl dial-stdio"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Command = %q\nwant      %q", got, want)
	}
	// ?circlectl= wins over the environment.
	got = (&ctl.SSHHost{Host: "h1", Circlectl: "/x y/circlectl"}).Command()
	if last := got[len(got)-1]; last != "'/x y/circlectl' dial-stdio" {
		t.Errorf("remote command %q", last)
	}
}
