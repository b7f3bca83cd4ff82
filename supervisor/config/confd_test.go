package config

import (
	"os"
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
