package ctl_test

import (
	"path/filepath"
	"testing"

	"github.com/circle-supervisor/circle/ctl"
)

func TestResolveSocket(t *testing.T) {
	t.Setenv(ctl.SocketEnv, "/env/c.sock")
	tests := []struct{ flag, config, want string }{
		{"/flag.sock", "/conf.sock", "/flag.sock"},
		{"", "/conf.sock", "/conf.sock"},
		{"", "", "/env/c.sock"},
	}
	for _, tt := range tests {
		if got := ctl.ResolveSocket(tt.flag, tt.config); got != tt.want {
			t.Errorf("ResolveSocket(%q, %q) = %q, want %q", tt.flag, tt.config, got, tt.want)
		}
	}
	if got := ctl.ResolveSocket("rel.sock", ""); !filepath.IsAbs(got) || filepath.Base(got) != "rel.sock" {
		t.Errorf("relative flag resolved to %q, want it absolute", got)
	}
	t.Setenv(ctl.SocketEnv, "")
	if got := ctl.ResolveSocket("", ""); got != ctl.DefaultSocketPath() || got == "" {
		t.Errorf("ResolveSocket without anything = %q, want DefaultSocketPath %q", got, ctl.DefaultSocketPath())
	}
}

func TestUnixDefault(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name string
		euid int
		env  map[string]string
		want string
	}{
		{"root ignores XDG", 0, map[string]string{"XDG_RUNTIME_DIR": "/run/user/0"}, "/root/default.sock"},
		{"user XDG", 1000, map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, "/run/user/1000/circled.sock"},
		{"user relative XDG ignored", 1000, map[string]string{"XDG_RUNTIME_DIR": "rel"}, "/tmp/circled-1000/circled.sock"},
		{"user no XDG", 1000, nil, "/tmp/circled-1000/circled.sock"},
	}
	for _, tt := range tests {
		if got := ctl.UnixDefault(tt.euid, env(tt.env), "/root/default.sock"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
