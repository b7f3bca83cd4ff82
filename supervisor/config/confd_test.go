package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The example config in conf.d/ (what `make run` starts) must stay valid
// and warning-free.
func TestExampleConfD(t *testing.T) {
	cfg, err := Load("../../conf.d/circled.ini", Options{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Watchers) == 0 {
		t.Fatal("conf.d defines no watcher")
	}
	for _, w := range cfg.Warnings {
		t.Errorf("warning: %s", w)
	}
}

var commentedKey = regexp.MustCompile(`^# [a-z_.]+ = `)

// Uncommenting any commented-out key of the shipped example must give a
// valid setting, without warnings (issue 20.1: the socket line carried an
// inline "comment" that became part of the path).
func TestExampleConfDUncommented(t *testing.T) {
	data, err := os.ReadFile("../../conf.d/circled.ini")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	n := 0
	for i, ln := range lines {
		if commentedKey.MatchString(ln) {
			lines[i] = strings.TrimPrefix(ln, "# ")
			n++
		}
	}
	if n == 0 {
		t.Fatal("no commented-out key found")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "circled.ini")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, Options{Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Socket != "/run/circled/circled.sock" {
		t.Errorf("socket = %q", cfg.Daemon.Socket)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("warning: %s", w)
	}
}
