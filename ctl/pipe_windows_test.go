package ctl

// Under Wine 8 go-winio cannot accept on a named pipe, so the tests that
// serve HTTP over the pipe are in pipe_realwindows_test.go (build tag
// realwindows); these run under Wine too.

import (
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

func TestWindowsPipePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`\\.\pipe\circled`, `\\.\pipe\circled`, true},
		{`\\.\PIPE\Other`, `\\.\pipe\Other`, true},
		{`//./pipe/x`, `\\.\pipe\x`, true},
		{`circled-test`, `\\.\pipe\circled-test`, true},
		{`C:\ProgramData\circled\circled.sock`, `C:\ProgramData\circled\circled.sock`, false},
		{`rel\c.sock`, `rel\c.sock`, false},
		{`/tmp/c.sock`, `/tmp/c.sock`, false},
		{`\\.\pipe\`, `\\.\pipe\`, false},
	} {
		got, ok := pipePath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pipePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWindowsResolveSocketKeepsPipes(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if got := ResolveSocket("", ""); got != `\\.\pipe\circled` {
		t.Errorf("default = %q", got)
	}
	if got := ResolveSocket("mine", ""); got != `\\.\pipe\mine` {
		t.Errorf("--socket mine = %q", got)
	}
	if got := ResolveSocket("", `\\.\pipe\conf`); got != `\\.\pipe\conf` {
		t.Errorf("config pipe = %q", got)
	}
	t.Setenv(SocketEnv, "envpipe")
	if got := ResolveSocket("", ""); got != `\\.\pipe\envpipe` {
		t.Errorf("$CIRCLED_SOCKET = %q", got)
	}
}

func TestWindowsListenRefusesFilePath(t *testing.T) {
	_, err := Listen(`C:\x\circled.sock`, 0)
	if err == nil || !strings.Contains(err.Error(), "is not a named pipe") {
		t.Fatalf("err = %v", err)
	}
	c := NewClient(`C:\x\circled.sock`)
	if _, err := c.Version(t.Context()); err == nil || !strings.Contains(err.Error(), "is not a named pipe") {
		t.Fatalf("client err = %v", err)
	}
}

func TestWindowsPipeSDDL(t *testing.T) {
	me, err := CurrentUserSID()
	if err != nil {
		t.Fatal(err)
	}
	got := pipeSDDL([]string{me, "S-1-5-18", me, "S-1-5-21-1-2-3-1001"})
	want := "D:P(A;;GA;;;SY)(A;;GA;;;BA)"
	if me != "S-1-5-18" {
		want += "(A;;GA;;;" + me + ")"
	}
	want += "(A;;GA;;;S-1-5-21-1-2-3-1001)"
	if got != want {
		t.Fatalf("sddl = %s\nwant   %s", got, want)
	}
	// It must parse, and its DACL must be protected (no inherited ACEs).
	sd, err := windows.SecurityDescriptorFromString(got)
	if err != nil {
		t.Fatalf("SDDL does not parse: %v", err)
	}
	ctrl, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	if ctrl&windows.SE_DACL_PROTECTED == 0 {
		t.Fatalf("DACL not protected: control %#x", ctrl)
	}
}

func TestWindowsAllowPipeUser(t *testing.T) {
	if err := AllowPipeUser("not-a-sid"); err == nil {
		t.Fatal("bad SID accepted")
	}
	pipeUsers.Lock()
	old := pipeUsers.sids
	pipeUsers.Unlock()
	t.Cleanup(func() { pipeUsers.Lock(); pipeUsers.sids = old; pipeUsers.Unlock() })
	if err := AllowPipeUser("S-1-5-21-1-2-3-1001"); err != nil {
		t.Fatal(err)
	}
	pipeUsers.Lock()
	defer pipeUsers.Unlock()
	if n := len(pipeUsers.sids); n == 0 || pipeUsers.sids[n-1] != "S-1-5-21-1-2-3-1001" {
		t.Fatalf("sids = %v", pipeUsers.sids)
	}
}
