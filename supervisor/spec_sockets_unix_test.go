//go:build unix

package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/circle-supervisor/circle/internal/limits"
	"github.com/circle-supervisor/circle/internal/sockets"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/circle-supervisor/circle/watcher"
)

// A config's sockets, bound, reach a watcher's spec as descriptors 3, 4,
// ... in the order $(circle.sockets.NAME) was numbered, with their names
// for LISTEN_FDNAMES; max_age maps too.
func TestSpecSockets(t *testing.T) {
	dir := t.TempDir()
	ini := `[watcher:web]
cmd = server --fd $(circle.sockets.web) --admin $(circus.sockets.admin)
max_age = 60
max_age_variance = 5
[watcher:plain]
cmd = sleep 1
[socket:web]
host = 127.0.0.1
port = 0
[socket:admin]
path = ` + filepath.Join(dir, "admin.sock") + `
`
	p := filepath.Join(dir, "circled.ini")
	if err := os.WriteFile(p, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, config.Options{Environ: []string{"PATH=/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	held, err := sockets.BindAll(cfg.Sockets)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var web, plain *config.Watcher
	for _, w := range cfg.Watchers {
		switch w.Name {
		case "web":
			web = w
		case "plain":
			plain = w
		}
	}
	s := &Supervisor{rings: map[string]*logs.Ring{}, files: logs.NewFiles()}
	sp := s.spec(web, cfg.Daemon)
	if want := []string{"server", "--fd", "4", "--admin", "3"}; !slices.Equal(sp.Argv, want) {
		t.Errorf("Argv %q, want %q", sp.Argv, want)
	}
	if sp.MaxAge != 60e9 || sp.MaxAgeVariance != 5e9 {
		t.Errorf("MaxAge %v %v", sp.MaxAge, sp.MaxAgeVariance)
	}
	if err := withSockets(&sp, web, held); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sp.ListenNames, []string{"admin", "web"}) || len(sp.Files) != 2 ||
		sp.Files[0] != held.Get("admin").File || sp.Files[1] != held.Get("web").File {
		t.Errorf("Files %v ListenNames %q", sp.Files, sp.ListenNames)
	}
	var psp watcher.Spec
	if err := withSockets(&psp, plain, held); err != nil || psp.Files != nil || psp.ListenNames != nil {
		t.Errorf("plain: %v %v %v", psp.Files, psp.ListenNames, err)
	}
	// A socket the set does not hold is an error naming the watcher.
	held.Update(nil)
	if err := withSockets(&sp, web, held); err == nil {
		t.Error("no error for sockets that are not bound")
	}
}

// The limit keys map onto internal/limits' Limits unchanged.
func TestLimitsOf(t *testing.T) {
	wc := &config.Watcher{
		Limits:    config.Limits{MemoryMax: 1 << 30, MemoryHigh: 1 << 29, CPUMax: 12.5, PidsMax: 64, IOWeight: 200},
		MaxMemory: 1 << 28, MaxMemoryInterval: 2e9,
	}
	want := limits.Limits{MemoryMax: 1 << 30, MemoryHigh: 1 << 29, CPUMax: 12.5, PidsMax: 64, IOWeight: 200, MaxMemory: 1 << 28, MaxMemoryInterval: 2e9}
	if got := limitsOf(wc); got != want {
		t.Errorf("limitsOf = %+v, want %+v", got, want)
	}
	if !limitsOf(&config.Watcher{}).IsZero() {
		t.Error("no limit keys: not zero")
	}
}
